import importlib
import subprocess
import sys

import interp


def test_public_api_resolves():
    for name in interp.__all__:
        assert getattr(interp, name) is not None, name


def test_import_is_cheap_and_side_effect_free():
    """`import interp` loads no torch and chooses no device (nothing happens at import time)."""
    code = "import sys, interp; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    importlib.reload(interp)
