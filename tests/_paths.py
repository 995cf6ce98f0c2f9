"""Where the tests find ../shared (real benchmark images); tests that need it skip without it."""
import os
from pathlib import Path


def shared_data() -> Path:
    """../shared/data beside the project, or $HINAS_SHARED (the shared folder or its data/)."""
    env = os.environ.get("HINAS_SHARED")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"
    return root / "data" if (root / "data").is_dir() else root
