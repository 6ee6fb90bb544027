import sys
from pathlib import Path

# tools/ is not a package; its shared helpers are imported by path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
