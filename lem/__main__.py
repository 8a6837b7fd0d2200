"""`python -m lem`: the Hydra entry point."""

from lem.app import main

if __name__ == "__main__":
    main()
