"""Reading the files nadfit takes as input or reads back: JSON objects and TOML/YAML settings.

Every failure is a one-line :class:`UserError` naming the file; nothing is unpickled or evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path

from nadfit.datasets.errors import UserError


def read_json(path: Path, what: str) -> dict:
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{what} is missing", file=str(path)) from None
    except IsADirectoryError:
        raise UserError(f"{what} is a folder, not a file", file=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UserError(f"{what} is not valid JSON ({exc.__class__.__name__})", file=str(path)) from None
    if not isinstance(obj, dict):
        raise UserError(f"{what} is not a JSON object", file=str(path))
    return obj


def read_mapping_file(path: Path, what: str, mapping_message: str) -> dict:
    """Parse a TOML (``.toml``) or YAML (anything else, safe loader) file that must hold a mapping.

    Every failure is a one-line UserError naming the file: unreadable, not UTF-8, not valid
    TOML/YAML, or not a mapping (``mapping_message``).
    """
    import tomllib

    from nadfit.datasets.validate import safe_load_yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {what} ({exc.strerror})", file=str(path)) from None
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text", file=str(path)) from None
    toml = path.suffix == ".toml"
    try:
        data = tomllib.loads(text) if toml else safe_load_yaml(text)
    except Exception as exc:
        raise UserError(f"{what} is not valid {'TOML' if toml else 'YAML'} ({exc.__class__.__name__})",
                        file=str(path)) from None
    if not isinstance(data, dict):
        raise UserError(mapping_message, file=str(path))
    return data
