"""`python -m rltcli` = `rlt`."""

import os

from rltcli.app import main

if __name__ == "__main__":
    if "LOCAL_RANK" in os.environ:  # a rank started by accelerate/torchrun: ends without the interpreter's teardown
        from stages.training.launch import run_rank

        run_rank(main)
    main()
