"""What the weights_tools scripts share: importing their dependencies with a message that says what to
install, and writing files atomically (a temporary name beside the target, renamed into place), so that a
failed run never leaves a half-written file."""
import contextlib
import importlib
import os
import sys


def import_or_exit(module, package):
    """The module, or exit 1 naming the Debian package (Debian's PyTorch lives in /usr/bin/python3)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"{package} not found for {sys.executable}: run scripts/install-deps.sh "
              f"(and run this script with /usr/bin/python3)", file=sys.stderr)
        sys.exit(1)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (parent folders created); renames it to `path` when the block
    succeeds, removes it when it fails."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
