/* sphinx-modelvis: the interactive figure. Hover or focus a module: its key. Click or Enter: copy it;
   shift: the regex. Click a folded range, or Space: unfold; a member's index: fold back. Markers and
   arrow keys collapse and expand. A filter above long figures. No framework, no request.
   Each module is a div.i (data-l: level, data-path, data-r: regex, data-s: its folded names' part of the
   regex, data-m: those names when not indices, data-k: has children) holding its lines (div.l), whose
   guide cells are <i> elements (P │, B ├──, E └──, S blank; data-c: cells left out of a deep line). */
(function () {
  if (window.modelvisFigures) return window.modelvisFigures.scan();
  var tip, live, noted, groups = 0, NO = "false", EXP = "aria-expanded", D = document;
  function all(root, css) { return [].slice.call(root.querySelectorAll(css)); }
  function has(el, name) { return el.classList.contains(name); }
  function kids(el) { return el.hasAttribute("data-k"); }
  function make(tag, name) { var el = D.createElement(tag); el.className = name; return el; }
  function lv(el) { return +el.dataset.l; }
  function hd(el) { return el.firstElementChild; }
  function esc(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  function regex(el) { return el.dataset.r || esc(el.dataset.path); }
  function shut(el) { return el.getAttribute(EXP) === NO; }
  function html(text) { return text.replace(/&/g, "&amp;").replace(/</g, "&lt;"); }

  function scan() { all(D, ".mv[data-mv]:not(.mv-on)").forEach(init); }

  function init(fig) {
    fig.classList.add("mv-on");
    var open = fig.dataset.open ? +fig.dataset.open : 1e9, lines = 0;
    all(fig, ".T").forEach(function (tree, t) {
      tree.setAttribute("role", "tree");
      lines += all(tree, ".l").length;
      all(tree, ".i").forEach(function (el, i) {
        if (kids(el) && lv(el) >= open) el.setAttribute(EXP, NO);
        prep(el, !t && !i);
      });
      redo(tree);
    });
    if (lines > 40) finder(fig);
    fig.addEventListener("click", click);
    fig.addEventListener("keydown", key);
    fig.addEventListener("mouseover", function (e) { show(e.target.closest(".i"), e.target); });
    fig.addEventListener("mouseleave", hide);
    fig.addEventListener("focusin", function (e) { show(e.target.closest(".i")); });
    fig.addEventListener("focusout", hide);
  }

  // An el as a tree el, with a marker on its connector when it has children.
  function prep(el, first) {
    el.setAttribute("role", "treeitem");
    el.setAttribute("aria-level", lv(el) + 1);
    el.tabIndex = first ? 0 : -1;
    if (!kids(el)) return;
    if (!el.hasAttribute(EXP)) el.setAttribute(EXP, "true");
    var cell = all(hd(el), "i").pop();
    if (cell && !cell.firstChild) {
      var b = make("button", "K");
      b.tabIndex = -1;
      b.setAttribute("aria-hidden", "true");
      cell.appendChild(b);
    }
    mark(el);
  }

  function mark(el) {
    var b = hd(el).querySelector(".K");
    if (b) b.textContent = shut(el) ? "\u25b8" : "\u25be";
  }

  // Hide what collapsed modules hold, and groups shown unfolded.
  function redo(tree) {
    var closed = 1e9;
    all(tree, ".i").forEach(function (el) {
      var l = lv(el);
      if (l <= closed) closed = 1e9;
      el.hidden = l > closed || has(el, "gone");
      if (!el.hidden && shut(el)) closed = l;
    });
  }

  function toggle(el, open) {
    if (!kids(el)) return;
    el.setAttribute(EXP, open === undefined ? shut(el) : open);
    mark(el);
    redo(el.parentNode);
  }

  function block(el) {
    var items = [el], n = el.nextElementSibling;
    for (; n && lv(n) > lv(el); n = n.nextElementSibling) items.push(n);
    return items;
  }

  function members(el) {
    if (el.dataset.m) return JSON.parse(el.dataset.m);
    var names = [];
    hd(el).querySelector(".f").textContent.split(",").forEach(function (run) {
      var ends = run.split("-");
      for (var i = +ends[0]; i <= +ends[ends.length - 1]; i++) names.push("" + i);
    });
    return names;
  }

  // A folded group as its members: its lines again for each, with the member's name, paths and regexes.
  function unfold(el) {
    var items = block(el), d = lv(el) - 1, path = el.dataset.path, r = el.dataset.r;
    var stem = r.slice(0, r.length - el.dataset.s.length), id = "g" + (++groups), after = items[items.length - 1];
    var names = members(el);
    el.dataset.o = id;
    names.forEach(function (name, n) {
      var at = path.slice(0, path.lastIndexOf("{")) + name;
      items.forEach(function (old) {
        var c = old.cloneNode(true), s = c.dataset;
        s.path = at + s.path.slice(path.length);
        if (s.path.indexOf("{") < 0) delete s.r; else s.r = stem + esc(name) + s.r.slice(r.length);
        s.g = id;
        delete s.o;
        all(c, ".K").forEach(function (b) { b.remove(); });
        if (old === el) {
          var label = hd(c).querySelector(".f");
          label.textContent = name;
          label.className = "n m";
          delete s.m;
          delete s.s;
        }
        // All members but the last have a sibling below: their guide goes on down.
        if (n < names.length - 1) all(c, ".l").forEach(function (line, row) {
          var cell = all(line, "i")[d - (+line.dataset.c || 0)];
          if (cell) cell.className = old === el && !row ? "B" : "P";
        });
        after.after(c);
        prep(after = c);
      });
    });
    items.forEach(function (old) { old.classList.add("gone"); old.tabIndex = -1; });
    redo(el.parentNode);
  }

  function fold(member) {
    var tree = member.parentNode, id = member.dataset.g, el = tree.querySelector('[data-o="' + id + '"]');
    all(tree, '[data-g="' + id + '"]').forEach(function (c) { c.remove(); });
    block(el).forEach(function (old) { old.classList.remove("gone"); });
    redo(tree);
    el.tabIndex = 0;
    el.focus();
  }

  function click(e) {
    var t = e.target, el = t.closest(".i");
    if (!el) return;
    if (t.closest(".K")) return toggle(el);
    if (t.closest(".l") !== hd(el)) return;
    if (t.closest(".f")) return unfold(el);
    if (t.closest(".m")) return fold(el);
    copy(el, e.shiftKey);
  }

  function step(el, by) {
    do el = by > 0 ? el.nextElementSibling : el.previousElementSibling; while (el && el.hidden);
    return el;
  }

  function key(e) {
    var el = e.target, next = null, k = e.key;
    if (!has(el, "i")) return;
    if (k === "ArrowDown") next = step(el, 1);
    else if (k === "ArrowUp") next = step(el, -1);
    else if (k === "Home" || k === "End") next = all(el.parentNode, ".i:not([hidden])")[k === "Home" ? "shift" : "pop"]();
    else if (k === "ArrowRight") { if (shut(el)) toggle(el, true); else next = step(el, 1); }
    else if (k === "ArrowLeft") {
      if (kids(el) && !shut(el)) toggle(el, false);
      else for (next = el; next && lv(next) >= lv(el);) next = next.previousElementSibling;
    } else if (k === "Enter") copy(el, e.shiftKey);
    else if (k === " ") {
      if (hd(el).querySelector(".f")) { unfold(el); next = step(el, 1); }
      else if (el.dataset.g) fold(el);
    } else return;
    e.preventDefault();
    if (next) { el.tabIndex = -1; next.tabIndex = 0; next.focus(); }
  }

  function copy(el, asRegex) {
    var text = asRegex ? regex(el) : el.dataset.path;
    function done() { say(el, (asRegex ? "regex" : "key") + " copied: " + (text || "(the root: an empty key)")); }
    function fallback() {
      var area = D.body.appendChild(make("textarea", "mv-live"));
      area.value = text;
      area.select();
      try { D.execCommand("copy"); done(); } catch (x) { say(el, "could not copy"); }
      area.remove();
      el.focus();
    }
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  }

  function say(el, note) {
    if (!live) {
      live = D.body.appendChild(make("div", "mv-live"));
      live.setAttribute("aria-live", "polite");
    }
    live.textContent = note;
    show(el, 0, note);
    noted = el;
    clearTimeout(say.t);
    say.t = setTimeout(function () { noted = null; show(el); }, 1500);
  }

  // The key of the module under the pointer (or focus), and what a click does with it.
  // A note ("key copied") stays 1.5 s over its line, then the key again, unless the reader has moved on.
  function show(el, target, note) {
    if (!note) {
      if (el && el === noted && !(target && target.closest(".l") !== hd(el))) return;
      clearTimeout(say.t);
      noted = null;
    }
    if (!el || el.hidden || (target && target.closest(".l") !== hd(el))) return hide();
    if (!tip) {
      tip = D.body.appendChild(make("div", "mv-tip"));
      tip.id = "mv-tip";
      tip.setAttribute("role", "tooltip");
    }
    var path = el.dataset.path, r = el.dataset.r, text = "<b>" + html(note || path || "the root module") + "</b>";
    if (!note && r) text += "\n<em>regex for PEFT's target_modules:</em> " + html(r);
    if (!note && path) text += "\n<em>click: copy the key" + (r ? ", shift+click: the regex" : "") + "</em>";
    tip.innerHTML = text;
    tip.hidden = false;
    var box = hd(el).getBoundingClientRect(), cell = all(hd(el), "i").pop(), top = box.bottom + 4;
    if (top + tip.offsetHeight > innerHeight) top = box.top - tip.offsetHeight - 4;
    tip.style.top = top + "px";
    tip.style.left = Math.max(4, Math.min(cell ? cell.getBoundingClientRect().right : box.left,
      innerWidth - tip.offsetWidth - 4)) + "px";
    el.setAttribute("aria-describedby", "mv-tip");
  }

  function hide() { clearTimeout(say.t); noted = null; if (tip) tip.hidden = true; }

  // Lines matching what is typed, and the modules above them, stand out; the rest dims.
  function finder(fig) {
    var bar = make("div", ""), input = make("input", "mv-find"), count = make("span", "mv-count");
    input.type = "search";
    input.placeholder = "find a module";
    input.setAttribute("aria-label", "Find in this figure");
    bar.append(input, count);
    fig.prepend(bar);
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase(), hits = 0;
      fig.classList.toggle("q", !!q);
      all(fig, ".T").forEach(function (tree) {
        var items = all(tree, ".i");
        items.forEach(function (el, i) {
          el.classList.remove("hit", "anc");
          if (!q || has(el, "gone") ||
            (el.textContent + " " + el.dataset.path).toLowerCase().indexOf(q) < 0) return;
          el.classList.add("hit");
          hits++;
          for (var l = lv(el), j = i - 1; j >= 0 && l; j--) {
            var up = items[j];
            if (lv(up) < l && !has(up, "gone")) {
              up.classList.add("anc");
              up.setAttribute(EXP, "true");
              mark(up);
              l = lv(up);
            }
          }
        });
        redo(tree);
      });
      count.textContent = q ? hits + (hits === 1 ? " match" : " matches") : "";
    });
  }

  window.modelvisFigures = {scan: scan};
  if (D.readyState === "loading") D.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
