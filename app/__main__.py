"""``python -m app``: at this stage, the embedded exchange in live mode, printing every slot.

Later issues start the console (Dash) and the operator agent here as well.
"""

from app.exchange.runner import main

raise SystemExit(main())
