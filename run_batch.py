#!/usr/bin/env python3
"""Entry point: ``python run_batch.py <command>`` is the same as ``crm-batch <command>``."""

from crm_batch.cli import main

if __name__ == "__main__":
    main()
