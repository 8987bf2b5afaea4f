"""End-to-end demo of GlobE Link (placeholder; the real demo replaces this package's entry)."""
