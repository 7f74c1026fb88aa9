"""`python -m transfer_runner` runs the CLI."""

from transfer_runner.cli import main

if __name__ == "__main__":
    main()
