"""Allow ``python -m crm_batch``."""

from crm_batch.cli import main

if __name__ == "__main__":
    main()
