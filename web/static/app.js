/* vnsearch – progressive enhancement only: the search form works without this file.
 *  - "/" focuses the search box (unless you are already typing somewhere);
 *  - suggestions as you type: an ARIA 1.2 combobox with a listbox popup.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 150;
  var input = document.getElementById("q");
  if (!input || !input.form) {
    return;
  }
  var form = input.form;

  function isEditable(el) {
    if (!el) {
      return false;
    }
    var tag = el.tagName;
    return el.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (isEditable(document.activeElement)) {
      return;
    }
    event.preventDefault();
    input.focus();
    input.select();
  });

  if (!window.fetch || !window.DOMParser) {
    return;
  }

  /* ---- combobox wiring ---- */
  var listId = "q-suggestions";
  var list = document.createElement("ul");
  list.id = listId;
  list.className = "suggestions";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Gợi ý tìm kiếm");
  list.hidden = true;
  input.parentNode.appendChild(list);

  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", listId);

  var live = document.createElement("div");
  live.className = "visually-hidden";
  live.setAttribute("role", "status");
  live.setAttribute("aria-live", "polite");
  form.appendChild(live);

  var items = [];
  var active = -1;
  var timer = null;
  var controller = null;
  var lastRequested = null;

  /* Copy text and <mark> only: the server escapes, this makes sure nothing else slips through. */
  function appendHighlighted(target, html) {
    var doc = new DOMParser().parseFromString("<body>" + html + "</body>", "text/html");
    (function walk(node, into) {
      node.childNodes.forEach(function (child) {
        if (child.nodeType === Node.TEXT_NODE) {
          into.appendChild(document.createTextNode(child.nodeValue));
        } else if (child.nodeType === Node.ELEMENT_NODE) {
          if (child.tagName === "MARK") {
            var mark = document.createElement("mark");
            walk(child, mark);
            into.appendChild(mark);
          } else {
            walk(child, into);
          }
        }
      });
    })(doc.body, target);
  }

  function setActive(index) {
    if (active >= 0 && items[active]) {
      items[active].setAttribute("aria-selected", "false");
    }
    active = index;
    if (active >= 0 && items[active]) {
      items[active].setAttribute("aria-selected", "true");
      input.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function close() {
    setActive(-1);
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
  }

  function open() {
    if (items.length) {
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }
  }

  function render(suggestions) {
    list.textContent = "";
    items = [];
    active = -1;
    input.removeAttribute("aria-activedescendant");
    suggestions.forEach(function (s, i) {
      if (!s || typeof s.text !== "string") {
        return;
      }
      var li = document.createElement("li");
      li.id = listId + "-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.value = s.text;
      if (typeof s.html === "string") {
        appendHighlighted(li, s.html);
      } else {
        li.textContent = s.text;
      }
      items.push(li);
      list.appendChild(li);
    });
    if (items.length) {
      open();
      live.textContent = items.length + " gợi ý. Dùng phím mũi tên lên xuống để chọn.";
    } else {
      close();
      live.textContent = "";
    }
  }

  function pick(index) {
    var item = items[index];
    if (!item) {
      return;
    }
    input.value = item.dataset.value;
    close();
    if (form.requestSubmit) {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  function fetchSuggestions() {
    var value = input.value;
    if (!value.trim()) {
      lastRequested = null;
      render([]);
      return;
    }
    if (value === lastRequested) {
      open();
      return;
    }
    lastRequested = value;
    if (controller) {
      controller.abort();
    }
    controller = window.AbortController ? new AbortController() : null;
    var url = (form.dataset.suggestUrl || "/api/suggest") + "?q=" + encodeURIComponent(value);
    fetch(url, {
      headers: { Accept: "application/json" },
      signal: controller ? controller.signal : undefined,
    })
      .then(function (response) {
        return response.ok ? response.json() : { suggestions: [] };
      })
      .then(function (data) {
        if (input.value !== value || document.activeElement !== input) {
          return; /* stale answer */
        }
        render(Array.isArray(data.suggestions) ? data.suggestions : []);
      })
      .catch(function () {
        /* offline, aborted or no index: the plain form still works */
      });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(fetchSuggestions, DEBOUNCE_MS);
  });

  input.addEventListener("keydown", function (event) {
    var expanded = !list.hidden && items.length > 0;
    switch (event.key) {
      case "ArrowDown":
        event.preventDefault();
        if (!expanded) {
          open();
          if (!items.length) {
            fetchSuggestions();
          }
          return;
        }
        setActive(active + 1 >= items.length ? 0 : active + 1);
        break;
      case "ArrowUp":
        if (!expanded) {
          return;
        }
        event.preventDefault();
        setActive(active - 1 < 0 ? items.length - 1 : active - 1);
        break;
      case "Enter":
        if (expanded && active >= 0) {
          event.preventDefault();
          pick(active);
        }
        break;
      case "Escape":
        if (expanded) {
          event.preventDefault();
          close();
        }
        break;
      default:
        break;
    }
  });

  /* mousedown would blur the input (and close the list) before the click lands. */
  list.addEventListener("mousedown", function (event) {
    event.preventDefault();
  });

  list.addEventListener("click", function (event) {
    var li = event.target.closest('[role="option"]');
    if (li) {
      pick(items.indexOf(li));
    }
  });

  input.addEventListener("blur", function () {
    close();
  });

  form.addEventListener("submit", function () {
    clearTimeout(timer);
    close();
  });
})();
