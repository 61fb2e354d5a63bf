from profiles.management.import_command import ImportCommand
from profiles.models import DataImport


class Command(ImportCommand):
    help = (
        "Import profiles (identifiers and traits) from FILE (.csv with a header row, or .jsonl) "
        "as identify messages through ingestion. Refused rows are reported by line number; the "
        "good ones are kept."
    )
    kind = DataImport.Kind.PROFILES
