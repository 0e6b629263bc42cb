"""Random but realistic flagd targeting rules (attributes compared with literals), for agreement with flagd-core."""

from __future__ import annotations

import random
from typing import Any

VARS = ["tier", "email", "age", "version", "user.plan", "beta", "$flagd.flagKey", "targetingKey"]
LITS = ["gold", "admin@x.com", "@x.com", "1.2.3", "v2", 0, 1, 18, 2.5, True, False, None, "", "on", "off", "pro"]

def value(r: random.Random, d: int) -> Any:
    c = r.random()
    if d > 3 or c < 0.35:
        return r.choice(LITS)
    if c < 0.85:
        v = r.choice(VARS)
        return {"var": v} if r.random() < 0.8 else {"var": [v, r.choice(LITS)]}
    return cond(r, d + 1)

def cond(r: random.Random, d: int) -> Any:
    op = r.choice(["==", "!=", "===", "!==", "<", "<=", ">", ">=", "in", "starts_with", "ends_with", "sem_ver",
                   "and", "or", "!", "!!", "cat", "if", "missing"])
    if op in ("and", "or"):
        return {op: [cond(r, d + 1) for _ in range(r.randint(1, 3))]}
    if op in ("!", "!!"):
        return {op: [cond(r, d + 1)] if r.random() < 0.7 else {"var": r.choice(VARS)}}
    if op == "in":
        hay = r.choice([[r.choice(LITS) for _ in range(3)], r.choice(["gold@x.com", "1.2.3-pro"]), value(r, d + 1)])
        return {"in": [{"var": r.choice(VARS)}, hay]}
    if op == "sem_ver":
        return {"sem_ver": [{"var": r.choice(VARS)}, r.choice(["=", "!=", "<", "<=", ">", ">=", "^", "~"]),
                            r.choice(["1.2.3", "v1.2", "2", "1.2.3-rc.1", "2.0.0"])]}
    if op == "cat":
        return {"cat": [{"var": r.choice(VARS)}] + [value(r, d + 1) for _ in range(r.randint(0, 2))]}
    if op == "missing":
        return {"missing": [r.choice(["tier", "email", "age"])]}
    if op == "if":
        return rule(r, d + 1)
    var = {"var": r.choice(VARS)}
    lit = r.choice(LITS) if r.random() < 0.8 else {"var": r.choice(VARS)}
    return {op: [var, lit] if r.random() < 0.7 else [lit, var]}

def result(r: random.Random, d: int) -> Any:
    c = r.random()
    if c < 0.5 or d > 3:
        return r.choice(["on", "off", None, "on", "nope"])
    if c < 0.7:
        ws = [["on", r.choice([0, 1, 25, 50, 3])], ["off", r.choice([0, 1, 75, 50])]]
        first = [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}] if r.random() < 0.3 else []
        return {"fractional": first + ws}
    return rule(r, d + 1)

def rule(r: random.Random, d: int = 0) -> Any:
    n = r.choice([1, 1, 2])
    args = []
    for _ in range(n):
        args += [cond(r, d + 1), result(r, d + 1)]
    if r.random() < 0.7:
        args.append(result(r, d + 1))
    return {"if": args}



def random_flags(seed: int, count: int) -> dict[str, Any]:
    """A flag file of `count` flags with random targeting, the same for the same seed."""
    r = random.Random(seed)
    flags = {}
    for i in range(count):
        targeting = rule(r) if r.random() < 0.8 else cond(r, 0)
        flags[f"f{i}"] = {"state": "ENABLED", "variants": {"on": True, "off": False, "true": True, "false": False},
                          "defaultVariant": r.choice(["on", "off"]), "targeting": targeting}
    return {"flags": flags}
