"""The `km` command, the only typer code: one module per command group, registered in app.py."""


def main() -> None:
    from km_search.cli.app import app
    from km_search.settings import offline_environment

    offline_environment()

    app()
