"""Filing a complaint: the one path from a draft to its stored rows (above db/, below the IVR)."""
