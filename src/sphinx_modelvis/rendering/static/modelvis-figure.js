/* sphinx-modelvis: the interactive figure (docs/guides/interactive.md says what a reader can do with it).
   It reads the markup rendering/interactive.py writes, which shows the whole tree without this script;
   the markup's names are short because a figure repeats them on every line:
     div.i    a module: data-l its level, data-n its own name (a folded group's as {0-11}), data-s the
              regex of a folded group's own names, data-m those names when they are not indices, data-k
              present when the module has children. The script adds data-path, its key, and data-r, the
              regex of a key with a folded group (the markup does not repeat the ancestors' names).
     div.l    one of its lines, the first its own (data-c: guide cells a deep line leaves out)
     i        a guide cell: P │, B ├──, E └──, S blank
     span.f   a folded range
   A named figure (.mv data-anchor="NAME") gives each line of its tree an id, NAME:KEY with the key as the line
   shows it (folded groups as {0-11}); the script goes on from there to any module's key in the page's URL
   (#NAME:encoder.layer.3: unfolded, opened, highlighted), and points the links of the key role (a.mv-key) at
   the module they name (data-mv-key) rather than at the line that holds it. */
(() => {
  "use strict";
  // Each notebook output carries a copy: the first one does the work.
  if (window.modelvisFigures) return window.modelvisFigures.scan();

  const NOTE_MILLISECONDS = 1500; // then the line's key comes back
  const FILTER_ABOVE_LINES = 40;
  const EXPANDED = "aria-expanded";
  // One of each for the page's figures, made on first use.
  let tooltip = null;
  let liveRegion = null;
  let notedModule = null;
  let noteTimer = 0;
  let unfoldings = 0; // numbers them, to find their members when folding back

  const elements = (root, selector) => [...root.querySelectorAll(selector)];
  const levelOf = (module) => Number(module.dataset.l);
  const hasChildren = (module) => module.hasAttribute("data-k");
  const isCollapsed = (module) => module.getAttribute(EXPANDED) === "false";
  const ownLine = (module) => module.firstElementChild;
  const escapeRegex = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // A key without a folded group has no data-r: it matches itself.
  const regexOf = (module) => module.dataset.r || escapeRegex(module.dataset.path);
  const escapeHtml = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;");

  function element(tag, className) {
    const made = document.createElement(tag);
    made.className = className;
    return made;
  }

  function scan() {
    elements(document, ".mv[data-mv]:not(.mv-on)").forEach(setUp);
    // A key role's link goes to the line that holds the module (where a page without this script lands);
    // with it, straight to the module.
    elements(document, "a.mv-key[data-mv-key]").forEach((link) => {
      link.hash = link.dataset.mvKey;
    });
  }

  // Each module's key and, below a folded group, its regex: its parent's, then its own name (or the
  // group's data-s). Modules come in tree order, a parent before its children.
  function addKeys(tree) {
    const above = []; // by level: the last module's key and regex there
    for (const module of elements(tree, ".i")) {
      const level = levelOf(module);
      const name = module.dataset.n;
      const parent = level > 0 ? above[level - 1] : null;
      const ownRegex = module.dataset.s || escapeRegex(name);
      const key = { path: name, regex: module.dataset.s ? ownRegex : "" };
      if (parent && parent.path) {
        key.path = `${parent.path}.${name}`;
        if (parent.regex || module.dataset.s) key.regex = `${parent.regex || escapeRegex(parent.path)}\\.${ownRegex}`;
      }
      above[level] = key;
      module.dataset.path = key.path;
      if (key.regex) module.dataset.r = key.regex;
    }
  }

  function setUp(figure) {
    figure.classList.add("mv-on");
    const openDepth = figure.dataset.open ? Number(figure.dataset.open) : Infinity;
    let lineCount = 0;
    elements(figure, ".T").forEach((tree, treeIndex) => {
      tree.setAttribute("role", "tree");
      addKeys(tree);
      lineCount += elements(tree, ".l").length;
      elements(tree, ".i").forEach((module, index) => {
        if (hasChildren(module) && levelOf(module) >= openDepth) module.setAttribute(EXPANDED, "false");
        // One Tab stop per figure; arrow keys move on from there.
        makeTreeItem(module, treeIndex === 0 && index === 0);
      });
      hideCollapsed(tree);
    });
    if (lineCount > FILTER_ABOVE_LINES) addFilter(figure);
    // On the figure, not on each of its (maybe thousands of) lines.
    figure.addEventListener("click", onClick);
    figure.addEventListener("keydown", onKeyDown);
    figure.addEventListener("mouseover", (event) => showTip(event.target.closest(".i"), event.target));
    figure.addEventListener("mouseleave", hideTip);
    figure.addEventListener("focusin", (event) => showTip(event.target.closest(".i")));
    figure.addEventListener("focusout", hideTip);
  }

  function makeTreeItem(module, tabStop) {
    module.setAttribute("role", "treeitem");
    module.setAttribute("aria-level", levelOf(module) + 1);
    module.tabIndex = tabStop ? 0 : -1;
    if (!hasChildren(module)) return;
    if (!module.hasAttribute(EXPANDED)) module.setAttribute(EXPANDED, "true");
    const connector = elements(ownLine(module), "i").pop();
    if (connector && !connector.firstChild) {
      const marker = element("button", "mv-marker");
      // The item says aria-expanded and arrow keys toggle it: no stop for the keyboard here.
      marker.tabIndex = -1;
      marker.setAttribute("aria-hidden", "true");
      connector.appendChild(marker);
    }
    updateMarker(module);
  }

  function updateMarker(module) {
    const marker = ownLine(module).querySelector(".mv-marker");
    if (marker) marker.textContent = isCollapsed(module) ? "\u25b8" : "\u25be";
  }

  // A tree's modules are siblings in document order: those after a collapsed one, deeper, are inside it.
  function hideCollapsed(tree) {
    let collapsedLevel = Infinity;
    for (const module of elements(tree, ".i")) {
      const level = levelOf(module);
      if (level <= collapsedLevel) collapsedLevel = Infinity;
      module.hidden = level > collapsedLevel || module.classList.contains("mv-unfolded");
      if (!module.hidden && isCollapsed(module)) collapsedLevel = level;
    }
  }

  function setExpanded(module, expand = isCollapsed(module)) {
    if (!hasChildren(module)) return;
    module.setAttribute(EXPANDED, String(expand));
    updateMarker(module);
    hideCollapsed(module.parentNode);
  }

  function subtree(module) {
    const modules = [module];
    for (let next = module.nextElementSibling; next && levelOf(next) > levelOf(module); next = next.nextElementSibling) {
      modules.push(next);
    }
    return modules;
  }

  // data-m, else the label's ranges ("0-3,5"; "0,2,…,10" counts on by the step of the two before the "…"),
  // which the markup does not repeat.
  function memberNames(group) {
    if (group.dataset.m) return JSON.parse(group.dataset.m);
    const names = [];
    const parts = ownLine(group).querySelector(".f").textContent.split(",");
    parts.forEach((range, partIndex) => {
      if (range === "\u2026") {
        const step = Number(parts[partIndex - 1]) - Number(parts[partIndex - 2]);
        const end = Number(parts[partIndex + 1]);
        for (let index = Number(parts[partIndex - 1]) + step; index < end; index += step) names.push(String(index));
        return;
      }
      const ends = range.split("-");
      for (let index = Number(ends[0]); index <= Number(ends[ends.length - 1]); index++) names.push(String(index));
    });
    return names;
  }

  // The group's lines again for each member; its own stay, hidden, to fold back to.
  function unfold(group) {
    const groupModules = subtree(group);
    const cellIndex = levelOf(group) - 1; // the guide cell of the group's level
    const groupPath = group.dataset.path;
    const groupRegex = group.dataset.r;
    // The regex ends with the group's names (data-s): a member's, with its name.
    const regexStem = groupRegex.slice(0, groupRegex.length - group.dataset.s.length);
    const unfolding = `u${++unfoldings}`;
    const names = memberNames(group);
    let last = groupModules[groupModules.length - 1];
    group.dataset.unfoldedAs = unfolding;
    names.forEach((name, memberIndex) => {
      const memberPath = groupPath.slice(0, groupPath.lastIndexOf("{")) + name;
      for (const original of groupModules) {
        const copy = original.cloneNode(true);
        const data = copy.dataset;
        data.path = memberPath + data.path.slice(groupPath.length);
        if (!data.path.includes("{")) delete data.r;
        else data.r = regexStem + escapeRegex(name) + data.r.slice(groupRegex.length);
        data.memberOf = unfolding;
        delete data.unfoldedAs;
        elements(copy, ".mv-marker").forEach((marker) => marker.remove());
        if (original === group) {
          const label = ownLine(copy).querySelector(".f");
          label.textContent = name;
          label.className = "n mv-member";
          delete data.m;
          delete data.s;
        }
        // All members but the last have a sibling below: ├── and │ where the group had └── and blanks.
        if (memberIndex < names.length - 1) {
          elements(copy, ".l").forEach((line, row) => {
            const cell = elements(line, "i")[cellIndex - (Number(line.dataset.c) || 0)];
            if (cell) cell.className = original === group && row === 0 ? "B" : "P";
          });
        }
        last.after(copy);
        last = copy;
        makeTreeItem(copy, false);
      }
    });
    for (const original of groupModules) {
      original.classList.add("mv-unfolded");
      original.tabIndex = -1;
    }
    hideCollapsed(group.parentNode);
  }

  function foldBack(member) {
    const tree = member.parentNode;
    const unfolding = member.dataset.memberOf;
    const group = tree.querySelector(`[data-unfolded-as="${unfolding}"]`);
    elements(tree, `[data-member-of="${unfolding}"]`).forEach((copy) => copy.remove());
    subtree(group).forEach((original) => original.classList.remove("mv-unfolded"));
    hideCollapsed(tree);
    group.tabIndex = 0;
    group.focus();
  }

  function onClick(event) {
    const target = event.target;
    const module = target.closest(".i");
    if (!module) return;
    if (target.closest(".mv-marker")) return setExpanded(module);
    if (target.closest(".l") !== ownLine(module)) return; // its parameters' lines
    if (target.closest(".f")) return unfold(module);
    if (target.closest(".mv-member")) return foldBack(module);
    copy(module, event.shiftKey);
  }

  function visibleNeighbour(module, direction) {
    do module = direction > 0 ? module.nextElementSibling : module.previousElementSibling;
    while (module && module.hidden);
    return module;
  }

  function parentOf(module) {
    let above = module.previousElementSibling;
    while (above && levelOf(above) >= levelOf(module)) above = above.previousElementSibling;
    return above;
  }

  // An ARIA tree view's keys, each returning the module to move to, if any.
  const KEYS = {
    ArrowDown: (module) => visibleNeighbour(module, 1),
    ArrowUp: (module) => visibleNeighbour(module, -1),
    Home: (module) => elements(module.parentNode, ".i:not([hidden])").shift(),
    End: (module) => elements(module.parentNode, ".i:not([hidden])").pop(),
    ArrowRight: (module) => (isCollapsed(module) ? setExpanded(module, true) : visibleNeighbour(module, 1)),
    ArrowLeft: (module) =>
      hasChildren(module) && !isCollapsed(module) ? setExpanded(module, false) : parentOf(module),
    Enter: (module, event) => copy(module, event.shiftKey),
    " ": (module) => {
      if (ownLine(module).querySelector(".f")) {
        unfold(module);
        return visibleNeighbour(module, 1);
      }
      if (module.dataset.memberOf) foldBack(module);
    },
  };

  function onKeyDown(event) {
    const module = event.target;
    // Keys typed in the filter are not the tree's.
    if (!module.classList.contains("i") || !Object.hasOwn(KEYS, event.key)) return;
    event.preventDefault();
    const next = KEYS[event.key](module, event);
    if (next) {
      // A roving tabindex: the focused module is the Tab stop.
      module.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    }
  }

  function copy(module, asRegex) {
    const text = asRegex ? regexOf(module) : module.dataset.path;
    const copied = () => announce(module, `${asRegex ? "regex" : "key"} copied: ${text || "(the root: an empty key)"}`);
    // The clipboard API needs a secure context (https, localhost): elsewhere, the older way.
    function copyBySelection() {
      const area = document.body.appendChild(element("textarea", "mv-visually-hidden"));
      area.value = text;
      area.select();
      try {
        document.execCommand("copy");
        copied();
      } catch (error) {
        announce(module, "could not copy");
      }
      area.remove();
      module.focus();
    }
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(copied, copyBySelection);
    else copyBySelection();
  }

  function announce(module, note) {
    if (!liveRegion) {
      liveRegion = document.body.appendChild(element("div", "mv-visually-hidden"));
      liveRegion.setAttribute("aria-live", "polite");
    }
    liveRegion.textContent = note;
    showTip(module, null, note);
    notedModule = module;
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => {
      notedModule = null;
      showTip(module);
    }, NOTE_MILLISECONDS);
  }

  // target: what the pointer is over. Moving within a note's line keeps the note; moving on drops its
  // timer, which would put the old line's key over the new one.
  function showTip(module, target, note) {
    const offOwnLine = Boolean(module && target && target.closest(".l") !== ownLine(module));
    if (!note) {
      if (module && module === notedModule && !offOwnLine) return;
      clearTimeout(noteTimer);
      notedModule = null;
    }
    if (!module || module.hidden || offOwnLine) return hideTip();
    if (!tooltip) {
      tooltip = document.body.appendChild(element("div", "mv-tip"));
      tooltip.id = "mv-tip";
      tooltip.setAttribute("role", "tooltip");
    }
    const path = module.dataset.path;
    const regex = module.dataset.r;
    let html = `<b>${escapeHtml(note || path || "the root module")}</b>`;
    if (!note && regex) html += `\n<em>regex for PEFT's target_modules:</em> ${escapeHtml(regex)}`;
    if (!note && path) html += `\n<em>click: copy the key${regex ? ", shift+click: the regex" : ""}</em>`;
    tooltip.innerHTML = html;
    tooltip.hidden = false;
    // Under the name (past the guides), within the window.
    const line = ownLine(module).getBoundingClientRect();
    const connector = elements(ownLine(module), "i").pop();
    let top = line.bottom + 4;
    if (top + tooltip.offsetHeight > innerHeight) top = line.top - tooltip.offsetHeight - 4;
    const left = connector ? connector.getBoundingClientRect().right : line.left;
    tooltip.style.top = `${top}px`;
    tooltip.style.left = `${Math.max(4, Math.min(left, innerWidth - tooltip.offsetWidth - 4))}px`;
    module.setAttribute("aria-describedby", "mv-tip");
  }

  function hideTip() {
    clearTimeout(noteTimer);
    notedModule = null;
    if (tooltip) tooltip.hidden = true;
  }

  // Matches stand out with their ancestors (opened, so that the match shows); the rest dims.
  function addFilter(figure) {
    const bar = element("div", "");
    const input = element("input", "mv-find");
    const count = element("span", "mv-count");
    input.type = "search";
    input.placeholder = "find a module";
    input.setAttribute("aria-label", "Find in this figure");
    bar.append(input, count);
    figure.prepend(bar);
    input.addEventListener("input", () => {
      const query = input.value.trim().toLowerCase();
      let matches = 0;
      figure.classList.toggle("mv-filtering", Boolean(query));
      for (const tree of elements(figure, ".T")) {
        const modules = elements(tree, ".i");
        modules.forEach((module, index) => {
          module.classList.remove("mv-match", "mv-ancestor");
          if (!query || module.classList.contains("mv-unfolded")) return;
          if (!`${module.textContent} ${module.dataset.path}`.toLowerCase().includes(query)) return;
          module.classList.add("mv-match");
          matches++;
          for (let level = levelOf(module), above = index - 1; above >= 0 && level; above--) {
            const up = modules[above];
            if (levelOf(up) < level && !up.classList.contains("mv-unfolded")) {
              up.classList.add("mv-ancestor");
              up.setAttribute(EXPANDED, "true");
              updateMarker(up);
              level = levelOf(up);
            }
          }
        });
        hideCollapsed(tree);
      }
      count.textContent = query ? `${matches} match${matches === 1 ? "" : "es"}` : "";
    });
  }


  // -- a module's key in the URL: #NAME:KEY -------------------------------------------------------------

  let highlighted = null;

  // Whether a module's key, or the regex of a folded group's key (data-r), is the start of `key`.
  const leadsTo = (module, key) =>
    module.dataset.path === key ||
    key.startsWith(`${module.dataset.path}.`) ||
    (module.dataset.s && new RegExp(`^(?:${module.dataset.r})(?:\\.|$)`).test(key));

  // The module of `key` in a tree: folded groups on the way unfolded (outermost first), collapsed ancestors
  // opened. A key below a depth cut gives the deepest module on its way.
  function findModule(tree, key) {
    for (;;) {
      const modules = elements(tree, ".i:not(.mv-unfolded)");
      const exact = modules.find((module) => module.dataset.path === key);
      if (exact) return exact;
      const group = modules.find((module) => module.dataset.s && leadsTo(module, key));
      if (!group) return modules.filter((module) => leadsTo(module, key)).pop() || null;
      unfold(group);
    }
  }

  function revealAnchor() {
    let fragment;
    try {
      fragment = decodeURIComponent(location.hash.slice(1));
    } catch (error) {
      return; // not ours: a malformed escape
    }
    const colon = fragment.indexOf(":");
    if (colon < 0) return;
    const figure = elements(document, ".mv-on[data-anchor]").find(
      (candidate) => candidate.dataset.anchor === fragment.slice(0, colon),
    );
    if (!figure) return;
    const trees = elements(figure, ".T");
    const module = trees.length ? findModule(trees[trees.length - 1], fragment.slice(colon + 1)) : null;
    if (!module) return;
    const details = figure.closest("details"); // a figure shown collapsed (:collapse:) opens
    if (details) details.open = true;
    for (let above = parentOf(module); above; above = parentOf(above)) setExpanded(above, true);
    if (highlighted) highlighted.classList.remove("mv-target");
    highlighted = module;
    module.classList.add("mv-target");
    ownLine(module).scrollIntoView({ block: "center" });
  }

  // The same key again (a link clicked twice) changes no hash: reveal it anyway.
  function onLinkClick(event) {
    const link = event.target.closest && event.target.closest("a.mv-key");
    if (link && link.href === location.href) revealAnchor();
  }

  function start() {
    scan();
    revealAnchor();
  }

  window.modelvisFigures = { scan, noteMilliseconds: NOTE_MILLISECONDS };
  window.addEventListener("hashchange", revealAnchor);
  document.addEventListener("click", onLinkClick);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
