"""`python -m services.cli`: the command as the container and the tests run it."""

from services.cli.main import main

main()
