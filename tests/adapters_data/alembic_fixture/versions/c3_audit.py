"""add users.nickname and an audit table (release 2.4.0, the bad one)

Revision ID: c3d4e5f6a1b2
Revises: b2c3d4e5f6a1
"""
from alembic import op
import sqlalchemy as sa

revision = "c3d4e5f6a1b2"
down_revision = "b2c3d4e5f6a1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.String(40)))
    op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True), sa.Column("event", sa.String(200)))


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_column("users", "nickname")
