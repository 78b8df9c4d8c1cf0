"""`python -m rltcli` = `rlt`."""

from rltcli.app import main

if __name__ == "__main__":
    main()
