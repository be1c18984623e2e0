"""The web's pages: one module each, with ``setup(app, ctx)`` (listed in office.web.app.PAGES)."""
