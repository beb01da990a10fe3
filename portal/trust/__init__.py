"""Trust (issue 7): the audit log, consent records, idempotent writes, personal data export and
erasure."""
