/*! Trcker click capture: records the click of a tracking link, once per click id and browser.
 * Plain JavaScript, no build step. Configure on the script tag:
 *   <script src="/trcker.js" data-endpoint="/trk/capture" data-offer="summer-sale" async></script>
 * data-endpoint: where to POST (default /trk/capture, a path on your own domain that your CDN
 *   forwards to /api/clicks/capture with the x-api-key header added at the edge);
 * data-offer: the offer's slug or id, when the link does not carry ?offer=.
 * data-key: a Trcker key sent as x-api-key. Do not use it on a public page: a key in page source
 *   is a full read/write key for your brand. Keep it in the CDN instead (README).
 */
(function (w, d) {
  "use strict";
  var tag = d.currentScript;
  var conf = w.TrckerCapture || {};
  function option(name) {
    return conf[name] || (tag && tag.getAttribute("data-" + name)) || null;
  }
  var query = new URLSearchParams(w.location.search);
  var clickId = query.get("click_id");
  if (!clickId || !/^[A-Za-z0-9._-]{1,128}$/.test(clickId)) return;

  var cookieTail = "; Max-Age=2592000; Path=/; SameSite=Lax" +
    (w.location.protocol === "https:" ? "; Secure" : "");
  function setCookie(name, value) {
    d.cookie = name + "=" + encodeURIComponent(value) + cookieTail;
  }
  function cookie(name) {
    var match = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : null;
  }
  setCookie("trk_click_id", clickId);
  if (cookie("trk_sent") === clickId) return;

  var body = { click_id: clickId, landing_url: w.location.href };
  if (d.referrer) body.referrer = d.referrer;
  var offer = query.get("offer") || option("offer");
  if (offer) body.offer = offer;
  if (query.get("via")) body.partner = query.get("via");
  for (var i = 1; i <= 5; i++) {
    if (query.get("sub" + i)) body["sub" + i] = query.get("sub" + i);
  }
  var json = JSON.stringify(body);
  var endpoint = option("endpoint") || "/trk/capture";
  var key = option("key");
  function sent() {
    setCookie("trk_sent", clickId);
  }
  if (w.fetch) {
    var headers = { "content-type": "application/json" };
    if (key) headers["x-api-key"] = key;
    w.fetch(endpoint, {
      method: "POST",
      body: json,
      headers: headers,
      keepalive: true,
      credentials: "omit"
    }).then(function (response) {
      // 201 recorded or 200 duplicate: either way this click id is done.
      if (response.ok) sent();
    }, function () {});
  } else if (!key && navigator.sendBeacon &&
             navigator.sendBeacon(endpoint, new Blob([json], { type: "text/plain" }))) {
    sent();
  }
})(window, document);
