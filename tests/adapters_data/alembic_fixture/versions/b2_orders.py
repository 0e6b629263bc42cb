"""create orders (release 2.3.1)

Revision ID: b2c3d4e5f6a1
Revises: a1b2c3d4e5f6
"""
from alembic import op
import sqlalchemy as sa

revision = "b2c3d4e5f6a1"
down_revision = "a1b2c3d4e5f6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("orders", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")), sa.Column("total", sa.Integer))


def downgrade() -> None:
    op.drop_table("orders")
