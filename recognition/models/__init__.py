"""Model families, one module each; importing a module registers its models (recognition.registry imports each
when one of its models is first created)."""
