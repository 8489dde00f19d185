// Goldloop dashboard behaviour. Progressive enhancement only: every page works without it.
// Loaded as a static file (the Content-Security-Policy forbids inline scripts).
"use strict";
