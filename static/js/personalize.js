// Personalised content for any website: asks the CDP what the visitor sees in the page's
// placements (/v1/decide), renders it, and reports impressions and clicks as Experience
// Viewed / Experience Clicked events carrying the decision id (the ingestion API), which the
// experience's results and bandit count. No inline script is needed; load it with:
//
//   <script src="https://CDP/static/js/personalize.js" data-write-key="KEY"
//           data-host="https://CDP" defer></script>
//   <section data-cdp-placement="home_hero">
//     <h2 data-cdp-field="title">Default title</h2>   fields are HTML (profile values escaped)
//     <a data-cdp-href="link" data-cdp-field="cta">Shop</a>   href/src take http(s) or /paths
//   </section>
//
// The visitor is analytics.js's (localStorage ajs_user_id / ajs_anonymous_id); without one an
// anonymous id is made and kept there. Both requests are CORS "simple" ones (no preflight).
(() => {
  const script = document.currentScript;
  if (!script) return;
  const writeKey = script.dataset.writeKey;
  const host = (script.dataset.host || new URL(script.src).origin).replace(/\/$/, "");

  // crypto.randomUUID exists only on https pages; getRandomValues everywhere.
  const newId = () =>
    window.crypto.randomUUID
      ? window.crypto.randomUUID()
      : Array.from(window.crypto.getRandomValues(new Uint8Array(16)), (byte) =>
          byte.toString(16).padStart(2, "0"),
        ).join("");

  const stored = (name) => {
    try {
      const raw = window.localStorage.getItem(name);
      return raw ? JSON.parse(raw) : null;
    } catch (error) {
      return null;
    }
  };
  const visitor = () => {
    const userId = stored("ajs_user_id");
    if (userId) return { userId: String(userId) };
    let anonymousId = stored("ajs_anonymous_id");
    if (!anonymousId) {
      anonymousId = newId();
      try {
        window.localStorage.setItem("ajs_anonymous_id", JSON.stringify(anonymousId));
      } catch (error) {
        // Private mode: the id lives as long as the page.
      }
    }
    return { anonymousId: String(anonymousId) };
  };

  const pageContext = () => {
    const params = new URLSearchParams(window.location.search);
    const context = {
      path: window.location.pathname,
      referrer: document.referrer,
      utm_campaign: params.get("utm_campaign") || "",
      device: /Mobi|Android|iPhone/i.test(navigator.userAgent) ? "mobile" : "desktop",
    };
    return Object.fromEntries(Object.entries(context).filter(([, value]) => value));
  };

  const send = (who, event, decision) => {
    const message = {
      writeKey,
      ...who,
      event,
      messageId: newId(),
      timestamp: new Date().toISOString(),
      properties: {
        decision_id: decision.decision_id,
        placement: decision.placement,
        experience: decision.experience,
        variant: decision.variant,
      },
    };
    // text/plain keeps the request simple (no preflight); keepalive lets a click's event
    // leave while the browser follows the link.
    return fetch(`${host}/v1/t`, {
      method: "POST",
      body: JSON.stringify(message),
      headers: { "Content-Type": "text/plain" },
      keepalive: true,
    }).catch(() => {});
  };

  const entities = document.createElement("textarea");
  const safeUrl = (html) => {
    entities.innerHTML = html; // the content is HTML: &amp; in a URL is &
    const url = entities.value.trim();
    return /^(https?:\/\/|\/(?!\/))/i.test(url) ? url : null;
  };

  const render = (element, decision, who) => {
    const content = decision.content || {};
    element.querySelectorAll("[data-cdp-field]").forEach((node) => {
      const value = content[node.dataset.cdpField];
      if (typeof value === "string") node.innerHTML = value;
    });
    for (const [attribute, name] of [
      ["href", "cdpHref"],
      ["src", "cdpSrc"],
    ]) {
      element.querySelectorAll(`[data-cdp-${attribute}]`).forEach((node) => {
        const value = content[node.dataset[name]];
        const url = typeof value === "string" ? safeUrl(value) : null;
        if (url) node.setAttribute(attribute, url);
      });
    }
    element.dataset.cdpVariant = decision.variant || "";
    element.dataset.cdpDecision = decision.decision_id || "";
    element.classList.add("cdp-rendered");
    if (!decision.decision_id) return; // default content, nobody to count
    send(who, "Experience Viewed", decision).then(() => {
      element.dispatchEvent(new CustomEvent("cdp:viewed", { bubbles: true }));
    });
    element.addEventListener(
      "click",
      () => {
        send(who, "Experience Clicked", decision).then(() => {
          element.dispatchEvent(new CustomEvent("cdp:clicked", { bubbles: true }));
        });
      },
      { once: true },
    );
  };

  const run = () => {
    const elements = Array.from(document.querySelectorAll("[data-cdp-placement]"));
    if (!elements.length || !writeKey) return;
    const keys = [...new Set(elements.map((element) => element.dataset.cdpPlacement))];
    const who = visitor();
    const query = new URLSearchParams({
      placements: keys.join(","),
      writeKey,
      ...who,
      ...pageContext(),
    });
    fetch(`${host}/v1/decide?${query}`)
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((body) => {
        for (const decision of body.decisions) {
          elements
            .filter((element) => element.dataset.cdpPlacement === decision.placement)
            .forEach((element) => render(element, decision, who));
        }
      })
      .catch(() => {}); // the page keeps its default content
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
