"""The office's web dashboard (``busd office web``): see :mod:`office.web.app`."""
