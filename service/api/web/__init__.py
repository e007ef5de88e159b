"""The registry's web pages: server-rendered from the same documents the JSON API answers with
(``service.reads``), autoescaped, readable without JavaScript, and working with no internet (the
stylesheet and the little script are served from this package; every page sets a content security
policy that allows nothing from elsewhere)."""
