"""One-time offline weight setup (filled in by the metrics issue)."""
if __name__ == '__main__':
    pass
