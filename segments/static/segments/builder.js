// Segment builder: edits the definition (a JSON condition tree, see segments/conditions.py) in
// a hidden textarea and tells htmx to refresh the live preview ("definition-changed" on body).
//   <div data-segment-builder data-input="ID" data-vocabulary="ID" data-properties-url="URL">
// Campaigns reuse it for branch conditions, and for an event's property filters alone (a JSON
// list in the textarea; the event's name is typed in the input EVENT_ID):
//   <div data-segment-builder="where" data-event-input="EVENT_ID" data-input=... ...>
// data-errors='["/all/0", ...]' marks the nodes a server pointed at (pointers in the tree).
// Builders in content htmx swaps in start by themselves.
// The server validates everything; this file only shapes input. Vanilla JS, no build step.
(function () {
  "use strict";

  var OPS = {
    string: ["eq", "neq", "contains", "starts_with", "in", "not_in", "exists", "not_exists", "before", "after", "within_last"],
    number: ["eq", "neq", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists"],
    boolean: ["eq", "neq", "exists", "not_exists"],
    property: ["eq", "neq", "contains", "starts_with", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"],
    numeric: ["eq", "neq", "gt", "gte", "lt", "lte", "between"],
    date: ["within_last", "before", "after", "between", "exists", "not_exists"],
    recency: ["gt", "gte", "lt", "lte", "between", "exists", "not_exists"],
    score: ["gte", "gt", "lte", "lt", "between"],
    occurrence: ["within_last", "before", "after", "between"],
  };
  var OP_LABELS = {
    eq: "is", neq: "is not", contains: "contains", starts_with: "starts with", in: "is one of",
    not_in: "is none of", exists: "is set", not_exists: "is not set", gt: "more than",
    gte: "at least", lt: "less than", lte: "at most", between: "between", before: "before",
    after: "after", within_last: "within the last",
  };
  var COUNT_LABELS = { gte: "at least", gt: "more than", eq: "exactly", lte: "at most", lt: "fewer than", neq: "other than" };
  var KINDS = [
    ["trait", "Trait"], ["event", "Did an event"], ["computed", "Computed feature"],
    ["has_identifier", "Has identifier"], ["segment", "In segment"], ["consent", "Consent"],
    ["cluster", "Cluster"], ["propensity", "Propensity score"], ["group", "Group"],
  ];
  var GROUPS = { all: "all", any: "any", none: "none" };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), attrs[key]);
      else if (attrs[key] !== null && attrs[key] !== undefined) node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function select(options, value, onchange, label) {
    var node = el("select", { "aria-label": label, onchange: function () { onchange(node.value); } });
    options.forEach(function (option) {
      var pair = Array.isArray(option) ? option : [option, option];
      var opt = el("option", { value: pair[0], text: pair[1] });
      if (String(pair[0]) === String(value)) opt.selected = true;
      node.appendChild(opt);
    });
    return node;
  }

  function groupKey(node) {
    for (var key in GROUPS) if (Object.prototype.hasOwnProperty.call(node, key)) return key;
    return null;
  }

  function kindOf(node) {
    if (groupKey(node)) return "group";
    for (var i = 0; i < KINDS.length; i++) if (Object.prototype.hasOwnProperty.call(node, KINDS[i][0])) return KINDS[i][0];
    return "trait";
  }

  function fresh(kind, vocab) {
    switch (kind) {
      case "group": return { all: [fresh("trait", vocab)] };
      case "event": return { event: (vocab.events || [])[0] || "" };
      case "computed": return { computed: "monetary", op: "gt", value: 100 };
      case "has_identifier": return { has_identifier: "email" };
      case "segment": return { segment: ((vocab.segments || [])[0] || [0])[0], member: true };
      case "consent": return { consent: "email_marketing" };
      case "cluster": return { cluster: 0 };
      case "propensity": return { propensity: "purchase_30d", op: "gte", value: 0.5 };
      default: return { trait: "", op: "eq", value: "" };
    }
  }

  function Builder(root) {
    this.root = root;
    this.input = document.getElementById(root.dataset.input);
    this.vocab = JSON.parse(document.getElementById(root.dataset.vocabulary).textContent);
    this.propertiesUrl = root.dataset.propertiesUrl;
    if (root.dataset.segmentBuilder === "where") { this.startWhere(root); return; }
    try { this.state = JSON.parse(this.input.value); } catch (err) { this.state = null; }
    if (!this.state || typeof this.state !== "object" || !groupKey(this.state)) {
      this.state = { all: this.state && typeof this.state === "object" ? [this.state] : [fresh("trait", this.vocab)] };
    }
    this.render();
  }

  Builder.prototype.changed = function (rerender) {
    this.input.value = JSON.stringify(this.state);
    if (rerender) this.render();
    document.body.dispatchEvent(new CustomEvent("definition-changed"));
  };

  Builder.prototype.render = function () {
    this.root.textContent = "";
    this.root.appendChild(this.group(this.state, null, -1, ""));
    this.input.value = JSON.stringify(this.state);
  };

  Builder.prototype.markErrors = function () {
    var root = this.root;
    JSON.parse(root.dataset.errors || "[]").forEach(function (pointer) {
      var node = root.querySelector('[data-pointer="' + String(pointer).replace(/"/g, "") + '"]');
      if (node) node.classList.add("invalid");
    });
  };

  // Property filters alone: the state is {event, where} and the textarea holds `where`.
  Builder.prototype.startWhere = function (root) {
    var self = this;
    var eventInput = document.getElementById(root.dataset.eventInput);
    var where;
    try { where = JSON.parse(this.input.value || "[]"); } catch (err) { where = []; }
    this.state = { event: eventInput ? eventInput.value : "", where: Array.isArray(where) && where.length ? where : undefined };
    this.changed = function () {
      self.input.value = JSON.stringify(self.state.where || []);
      document.body.dispatchEvent(new CustomEvent("definition-changed"));
    };
    this.render = function () {
      var list = this.propertyList(this.state);
      root.textContent = "";
      root.appendChild(list.datalist);
      root.appendChild(this.eventFilters(this.state, list.datalist.id, false));
      list.load();
    };
    if (eventInput) eventInput.addEventListener("change", function () { self.state.event = eventInput.value; self.render(); });
    this.render();
  };

  // A datalist of the properties seen on the node's event, and what fills it.
  Builder.prototype.propertyList = function (node) {
    var self = this;
    var datalist = el("datalist", { id: "seg-props-" + Math.random().toString(36).slice(2) });
    function load() {
      if (!node.event || !self.propertiesUrl) return;
      fetch(self.propertiesUrl + "?event=" + encodeURIComponent(node.event), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : {}; })
        .then(function (props) {
          datalist.textContent = "";
          Object.keys(props).forEach(function (p) { datalist.appendChild(el("option", { value: p })); });
        });
    }
    return { datalist: datalist, load: load };
  };

  Builder.prototype.tools = function (list, index) {
    var self = this;
    if (!list) return null;
    function move(delta) {
      var target = index + delta;
      if (target < 0 || target >= list.length) return;
      var item = list.splice(index, 1)[0];
      list.splice(target, 0, item);
      self.changed(true);
    }
    return el("span", { class: "cond-tools" }, [
      el("button", { type: "button", class: "icon", title: "Move up", "aria-label": "Move up", text: "↑", onclick: function () { move(-1); } }),
      el("button", { type: "button", class: "icon", title: "Move down", "aria-label": "Move down", text: "↓", onclick: function () { move(1); } }),
      el("button", { type: "button", class: "icon danger", title: "Remove", "aria-label": "Remove condition", text: "×",
        onclick: function () { list.splice(index, 1); if (!list.length) list.push(fresh("trait", self.vocab)); self.changed(true); } }),
    ]);
  };

  Builder.prototype.group = function (node, parentList, index, pointer) {
    var self = this;
    var key = groupKey(node);
    var children = node[key];
    var box = el("div", { class: "cond-group", "data-pointer": pointer });
    var head = el("div", { class: "cond-head" }, [
      el("span", { text: "Match" }),
      select([["all", "all of"], ["any", "any of"], ["none", "none of"]], key, function (value) {
        delete node[key];
        node[value] = children;
        self.changed(true);
      }, "Group match"),
      el("button", { type: "button", class: "secondary small", text: "+ Condition", "data-add": "condition",
        onclick: function () { children.push(fresh("trait", self.vocab)); self.changed(true); } }),
      el("button", { type: "button", class: "secondary small", text: "+ Group", "data-add": "group",
        onclick: function () { children.push(fresh("group", self.vocab)); self.changed(true); } }),
      parentList ? this.tools(parentList, index) : null,
    ]);
    box.appendChild(head);
    var list = el("div", { class: "cond-children" });
    children.forEach(function (child, i) {
      var childPointer = pointer + "/" + key + "/" + i;
      list.appendChild(groupKey(child) ? self.group(child, children, i, childPointer) : self.condition(child, children, i, childPointer));
    });
    box.appendChild(list);
    return box;
  };

  Builder.prototype.condition = function (node, list, index, pointer) {
    var self = this;
    var kind = kindOf(node);
    var row = el("div", { class: "cond", "data-pointer": pointer });
    row.appendChild(select(KINDS, kind, function (value) {
      list[index] = fresh(value, self.vocab);
      self.changed(true);
    }, "Condition kind"));
    var body = el("span", { class: "cond-body" });
    this["render_" + kind](node, body);
    row.appendChild(body);
    row.appendChild(this.tools(list, index));
    return row;
  };

  Builder.prototype.text = function (value, onchange, attrs) {
    var self = this;
    var input = el("input", Object.assign({ type: "text", value: value === undefined ? "" : value }, attrs || {}));
    input.addEventListener("input", function () { onchange(input.value); self.changed(false); });
    return input;
  };

  Builder.prototype.number = function (value, onchange, attrs) {
    var self = this;
    var input = el("input", Object.assign({ type: "number", step: "any", value: value === undefined ? "" : value, class: "num" }, attrs || {}));
    input.addEventListener("input", function () {
      var parsed = input.value === "" ? null : Number(input.value);
      onchange(parsed);
      self.changed(false);
    });
    return input;
  };

  function parseScalar(raw, type) {
    if (type === "number" && raw !== "" && !isNaN(Number(raw))) return Number(raw);
    if (type === "boolean") return raw === "true";
    return raw;
  }

  // The value widget for (op, type) on `holder.value`.
  Builder.prototype.valueWidget = function (holder, type) {
    var self = this;
    var op = holder.op;
    var box = el("span", { class: "cond-value" });
    if (op === "exists" || op === "not_exists") { delete holder.value; return box; }
    if (op === "within_last") {
      var unit = holder.value && holder.value.hours !== undefined ? "hours" : "days";
      var amount = holder.value ? holder.value[unit] : 30;
      holder.value = {}; holder.value[unit] = amount;
      box.appendChild(this.number(amount, function (v) { holder.value = {}; holder.value[unit] = v === null ? 0 : Math.max(0, Math.round(v)); }, { min: 0, step: 1, "aria-label": "Days" }));
      box.appendChild(el("span", { text: unit }));
      return box;
    }
    if (op === "between") {
      var pair = Array.isArray(holder.value) ? holder.value : (type === "date" ? ["", ""] : [0, 100]);
      holder.value = pair;
      [0, 1].forEach(function (i) {
        if (i) box.appendChild(el("span", { text: "and" }));
        box.appendChild(type === "date"
          ? self.text(pair[i], function (v) { pair[i] = v; }, { type: "date", "aria-label": i ? "To" : "From" })
          : self.number(pair[i], function (v) { pair[i] = v; }, { "aria-label": i ? "High" : "Low" }));
      });
      return box;
    }
    if (op === "before" || op === "after") {
      if (typeof holder.value !== "string") holder.value = "";
      box.appendChild(this.text(holder.value, function (v) { holder.value = v; }, { type: "date", "aria-label": "Date" }));
      return box;
    }
    if (op === "in" || op === "not_in") {
      var items = Array.isArray(holder.value) ? holder.value : [];
      holder.value = items;
      box.appendChild(this.text(items.join(", "), function (v) {
        holder.value = v.split(",").map(function (s) { return parseScalar(s.trim(), type); }).filter(function (s) { return s !== ""; });
      }, { placeholder: "a, b, c", "aria-label": "Values" }));
      return box;
    }
    if (type === "boolean" && (op === "eq" || op === "neq")) {
      if (typeof holder.value !== "boolean") holder.value = true;
      box.appendChild(select([["true", "true"], ["false", "false"]], String(holder.value), function (v) { holder.value = v === "true"; self.changed(false); }, "Value"));
      return box;
    }
    if (type === "number" || ["gt", "gte", "lt", "lte"].indexOf(op) >= 0) {
      if (typeof holder.value !== "number") holder.value = Number(holder.value) || 0;
      box.appendChild(this.number(holder.value, function (v) { holder.value = v; }, { "aria-label": "Value" }));
      return box;
    }
    if (typeof holder.value !== "string") holder.value = holder.value === undefined || holder.value === null ? "" : String(holder.value);
    box.appendChild(this.text(holder.value, function (v) { holder.value = v; }, { "aria-label": "Value" }));
    return box;
  };

  Builder.prototype.opSelect = function (holder, ops, rerenderBox, type) {
    var self = this;
    if (ops.indexOf(holder.op) < 0) holder.op = ops[0];
    return select(ops.map(function (o) { return [o, OP_LABELS[o]]; }), holder.op, function (value) {
      holder.op = value;
      delete holder.value;
      rerenderBox();
      self.changed(false);
    }, "Operator");
  };

  Builder.prototype.render_trait = function (node, body) {
    var self = this;
    var type = function () {
      var t = (self.vocab.traits || {})[node.trait];
      return t === "number" || t === "boolean" ? t : "string";
    };
    var valueSlot = el("span");
    var opSlot = el("span");
    var drawnType = null;
    function redraw() {
      drawnType = type();
      opSlot.textContent = "";
      valueSlot.textContent = "";
      opSlot.appendChild(self.opSelect(node, OPS[type()], redraw));
      valueSlot.appendChild(self.valueWidget(node, type()));
    }
    body.appendChild(this.text(node.trait, function (v) { node.trait = v; }, { list: "seg-trait-keys", placeholder: "trait, e.g. country", "aria-label": "Trait", class: "path",
      // Only a known trait of another type changes the widgets (and never while typing).
      onchange: function () { if (type() !== drawnType) { redraw(); self.changed(false); } } }));
    body.appendChild(opSlot);
    body.appendChild(valueSlot);
    redraw();
  };

  Builder.prototype.render_event = function (node, body) {
    var self = this;
    var properties = this.propertyList(node);
    var listId = properties.datalist.id;
    body.appendChild(this.text(node.event, function (v) { node.event = v; }, { list: "seg-event-names", placeholder: "event name", "aria-label": "Event", class: "path", onchange: properties.load }));
    body.appendChild(properties.datalist);
    properties.load();
    // How the occurrences count: how many times (in a window), or when the first / last one was.
    var mode = node.first ? "first" : node.last ? "last" : "count";
    body.appendChild(select([["count", "how many times"], ["first", "first time"], ["last", "last time"]], mode, function (v) {
      delete node.first; delete node.last;
      if (v !== "count") {
        delete node.count; delete node.within; delete node.not_followed_by;
        node[v] = { op: "within_last", value: { days: 30 } };
      }
      self.changed(true);
    }, "Occurrence"));
    if (mode !== "count") {
      var spec = node[mode];
      var whenSlot = el("span");
      var redrawWhen = function () { whenSlot.textContent = ""; whenSlot.appendChild(self.valueWidget(spec, "date")); };
      body.appendChild(this.opSelect(spec, OPS.occurrence, redrawWhen));
      body.appendChild(whenSlot);
      redrawWhen();
      body.appendChild(this.eventFilters(node, listId, false));
      return;
    }
    var count = node.count || { op: "gte", value: 1 };
    body.appendChild(select(Object.keys(COUNT_LABELS).map(function (k) { return [k, COUNT_LABELS[k]]; }), count.op, function (v) {
      count.op = v; node.count = count; self.changed(false);
    }, "Count operator"));
    body.appendChild(this.number(count.value, function (v) { count.value = v === null ? 0 : Math.max(0, Math.round(v)); node.count = count; }, { min: 0, step: 1, "aria-label": "Times" }));
    body.appendChild(el("span", { text: "times" }));
    var window = node.within ? (node.within.between ? "between" : node.within.hours !== undefined ? "hours" : "days") : "ever";
    var windowSlot = el("span");
    function drawWindow(kind) {
      windowSlot.textContent = "";
      if (kind === "ever") { delete node.within; return; }
      if (kind === "between") {
        var pair = node.within && node.within.between ? node.within.between : ["", ""];
        node.within = { between: pair };
        [0, 1].forEach(function (i) {
          windowSlot.appendChild(self.text(pair[i], function (v) { pair[i] = v; }, { type: "date", "aria-label": i ? "To" : "From" }));
        });
        return;
      }
      var amount = node.within && node.within[kind] !== undefined ? node.within[kind] : (kind === "days" ? 30 : 24);
      node.within = {}; node.within[kind] = amount;
      windowSlot.appendChild(self.number(amount, function (v) { node.within = {}; node.within[kind] = v === null ? 0 : Math.max(0, Math.round(v)); }, { min: 0, step: 1, "aria-label": "Window" }));
    }
    body.appendChild(select([["ever", "ever"], ["days", "in the last … days"], ["hours", "in the last … hours"], ["between", "between dates"]], window, function (v) {
      drawWindow(v); self.changed(false);
    }, "Time window"));
    body.appendChild(windowSlot);
    drawWindow(window);
    body.appendChild(this.eventFilters(node, listId, true));
  };

  // Property filters (and, for counted occurrences, "and then did not do ...").
  Builder.prototype.eventFilters = function (node, listId, withFollow) {
    var self = this;
    var filters = el("div", { class: "cond-filters" });
    function drawFilters() {
      filters.textContent = "";
      (node.where || []).forEach(function (filter, i) {
        var row = el("div", { class: "cond-filter", "data-pointer": "" });
        row.appendChild(el("span", { class: "muted", text: "where" }));
        row.appendChild(self.text(filter.property, function (v) { filter.property = v; }, { list: listId, placeholder: "property", "aria-label": "Property", class: "path" }));
        var valueSlot = el("span");
        function redrawValue() { valueSlot.textContent = ""; valueSlot.appendChild(self.valueWidget(filter, "string")); }
        row.appendChild(self.opSelect(filter, OPS.property, redrawValue));
        row.appendChild(valueSlot);
        redrawValue();
        row.appendChild(el("button", { type: "button", class: "icon danger", text: "×", "aria-label": "Remove filter", onclick: function () {
          node.where.splice(i, 1); if (!node.where.length) delete node.where; drawFilters(); self.changed(false);
        } }));
        filters.appendChild(row);
      });
      if (withFollow) filters.appendChild(self.followRow(node, drawFilters));
      filters.appendChild(el("button", { type: "button", class: "secondary small", text: "+ Property filter", onclick: function () {
        node.where = node.where || []; node.where.push({ property: "", op: "eq", value: "" }); drawFilters(); self.changed(false);
      } }));
    }
    drawFilters();
    return filters;
  };

  Builder.prototype.followRow = function (node, drawFilters) {
    var self = this;
    var follow = node.not_followed_by;
    var row = el("div", { class: "cond-filter" });
    var check = el("input", { type: "checkbox", "aria-label": "Not followed by" });
    check.checked = !!follow;
    check.addEventListener("change", function () {
      if (check.checked) { node.not_followed_by = { event: "Order Completed", within: { hours: 1 } }; delete node.count; }
      else delete node.not_followed_by;
      drawFilters(); self.changed(false);
    });
    row.appendChild(el("label", { class: "inline" }, [check, el("span", { text: " and then did not do" })]));
    if (follow) {
      row.appendChild(self.text(follow.event, function (v) { follow.event = v; }, { list: "seg-event-names", "aria-label": "Follow-up event", class: "path" }));
      row.appendChild(el("span", { text: "within" }));
      row.appendChild(self.number(follow.within.hours, function (v) { follow.within = { hours: v === null ? 0 : Math.max(0, Math.round(v)) }; }, { min: 0, step: 1, "aria-label": "Hours" }));
      row.appendChild(el("span", { text: "hours" }));
    }
    return row;
  };

  Builder.prototype.render_computed = function (node, body) {
    var self = this;
    var features = this.vocab.computed || [];
    var slot = el("span");
    function typeOf() { return (features.filter(function (f) { return f[0] === node.computed; })[0] || [0, 0, "numeric"])[2]; }
    function redraw() {
      slot.textContent = "";
      var type = typeOf();
      slot.appendChild(self.opSelect(node, OPS[type], redraw));
      slot.appendChild(self.valueWidget(node, type === "date" ? "date" : "number"));
    }
    body.appendChild(select(features.map(function (f) { return [f[0], f[1]]; }), node.computed, function (v) {
      node.computed = v; delete node.value; redraw(); self.changed(false);
    }, "Feature"));
    body.appendChild(slot);
    redraw();
  };

  Builder.prototype.render_has_identifier = function (node, body) {
    var self = this;
    body.appendChild(select(this.vocab.identifiers || ["email"], node.has_identifier, function (v) { node.has_identifier = v; self.changed(false); }, "Identifier"));
  };

  Builder.prototype.render_segment = function (node, body) {
    var self = this;
    body.appendChild(select([["true", "is a member of"], ["false", "is not a member of"]], String(node.member !== false), function (v) { node.member = v === "true"; self.changed(false); }, "Membership"));
    body.appendChild(select(this.vocab.segments || [], node.segment, function (v) { node.segment = Number(v); self.changed(false); }, "Segment"));
  };

  Builder.prototype.render_consent = function (node, body) {
    body.appendChild(el("span", { text: "granted" }));
    body.appendChild(this.text(node.consent, function (v) { node.consent = v; }, { placeholder: "purpose, e.g. email_marketing", "aria-label": "Purpose", class: "path" }));
  };

  Builder.prototype.render_cluster = function (node, body) {
    body.appendChild(el("span", { text: "belongs to cluster" }));
    body.appendChild(this.number(node.cluster, function (v) { node.cluster = v === null ? 0 : Math.max(0, Math.round(v)); }, { min: 0, step: 1, "aria-label": "Cluster" }));
  };

  Builder.prototype.render_propensity = function (node, body) {
    var self = this;
    var slot = el("span");
    function redraw() { slot.textContent = ""; slot.appendChild(self.opSelect(node, OPS.score, redraw)); slot.appendChild(self.valueWidget(node, "number")); }
    body.appendChild(select([["purchase_30d", "likelihood to buy in 30 days"], ["churn", "likelihood to churn"]], node.propensity, function (v) { node.propensity = v; self.changed(false); }, "Model"));
    body.appendChild(slot);
    redraw();
  };

  // After a preview swap, mark the nodes the server pointed at.
  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll(".cond.invalid, .cond-group.invalid").forEach(function (n) { n.classList.remove("invalid"); });
    document.querySelectorAll("[data-error-pointer]").forEach(function (err) {
      var target = document.querySelector('[data-segment-builder] [data-pointer="' + err.dataset.errorPointer.replace(/"/g, "") + '"]');
      if (target) target.classList.add("invalid");
    });
  });

  function init(within) {
    (within || document).querySelectorAll("[data-segment-builder]").forEach(function (root) {
      if (!root.builder) { root.builder = new Builder(root); root.builder.markErrors(); }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
  document.addEventListener("htmx:load", function (event) { init(event.detail.elt.parentNode || document); });
})();
