"""The claims page lists claims in one order, whichever claim module a session imported first."""

import subprocess
import sys


def test_claim_order_does_not_depend_on_import_order():
    code = ("import interp.claims.{first}\n"
            "from interp.claims.registry import list_claims\n"
            "print(','.join(c.id for c in list_claims()))")
    orders = {subprocess.run([sys.executable, "-c", code.format(first=first)], capture_output=True, text=True,
                             check=True).stdout for first in ("clever_hans", "transformers", "first_layer")}
    assert len(orders) == 1
    ids = orders.pop().strip().split(",")
    assert ids[0] == "gabor-first-layer" and ids.index("clever-hans") > ids.index("weight-banding")
