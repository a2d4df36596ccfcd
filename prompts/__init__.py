"""The audio prompts: studio recordings converted, or stand-ins synthesized from the Persian
catalog, into the Asterisk sounds directory for language fa; checked for missing and stale."""
