"""Scheduled household help (家家帮, planned half): care households, regular help tasks whose
occurrences are shifts of kind ``help_visit``, and the visits themselves."""
