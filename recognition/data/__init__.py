"""Labelled face-image datasets in the layouts users have, as one record type with canonical emotion labels."""
