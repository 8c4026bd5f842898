from segedge.cli import run

run()
