"""Validates SBOM documents with the reference libraries: CycloneDX JSON against the official 1.6 schema
(cyclonedx-python-lib, strict), SPDX 2.3 JSON with spdx-tools (parse + full validation). Prints one line per file
and exits 1 if any is invalid.

    python3 sbom_validate.py cyclonedx FILE... | spdx FILE...
"""
import sys


def cyclonedx(path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    with open(path) as f:
        errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(f.read())
    return [] if errors is None else [str(errors)]


def spdx(path):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    document = parse_file(path)
    return [m.validation_message for m in validate_full_spdx_document(document, "SPDX-2.3")]


if __name__ == "__main__":
    kind, files = sys.argv[1], sys.argv[2:]
    check = cyclonedx if kind == "cyclonedx" else spdx
    bad = 0
    for path in files:
        try:
            problems = check(path)
        except Exception as e:  # a parse failure is a validation failure
            problems = [f"{type(e).__name__}: {e}"]
        print(f"{path}: {'valid' if not problems else 'INVALID: ' + '; '.join(problems)}")
        bad += bool(problems)
    sys.exit(1 if bad else 0)
