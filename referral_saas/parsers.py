"""The API's JSON parser: DRF's, with JSON nested too deeply for Python's parser a 400 like any malformed body."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # "[[[[...]]]]" a thousand deep: json raises this, not a ValueError
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
