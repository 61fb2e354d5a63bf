from profiles.management.import_command import ImportCommand
from profiles.models import DataImport


class Command(ImportCommand):
    help = (
        "Import historical events from FILE (.csv with a header row, or .jsonl: one Segment "
        "message per line) through ingestion. Refused rows are reported by line number; the "
        "good ones are kept."
    )
    kind = DataImport.Kind.EVENTS
