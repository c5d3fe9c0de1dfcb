"""Go-live import of prior records (historical sign-offs, certifications, continuing education) from CSV and
XLSX files: reading the files (files), the columns and templates (columns), and the dry run, import and undo
(importer, row by row in rows), undoing an import (batches)."""
from .batches import blockers, recent, undo, unmatched_people
from .columns import FIELDS, KIND_LABELS, template_csv
from .importer import IMPORTED_ROLE, Options, Plan, preview, run

__all__ = ["FIELDS", "IMPORTED_ROLE", "KIND_LABELS", "Options", "Plan", "blockers", "preview", "recent", "run",
           "template_csv", "undo", "unmatched_people"]
