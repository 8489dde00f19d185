// Starts Swagger UI on /api/v1/docs (see goldloop/http/api_docs.py): a file, not an inline
// script, so the page keeps the dashboard's Content-Security-Policy.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    validatorUrl: null, // the default sends the schema to a public validator for a badge
  });
})();
