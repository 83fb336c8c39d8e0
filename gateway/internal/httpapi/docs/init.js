// Starts Swagger UI on Kiln's OpenAPI document. Everything is served by the
// gateway itself: no CDN, and no call to the public spec validator.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
};
