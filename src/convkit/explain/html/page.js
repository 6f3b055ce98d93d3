// convkit explanation page: steps through the data embedded as JSON; it computes no numbers.
// Positions are (step, frame); #step=N opens step N, #step=N.F its frame F (both from 1).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("convkit-data").textContent);
  var steps = Array.prototype.slice.call(document.querySelectorAll("li.step"));
  var ROLES = {window: "read", tap: "weights", out: "computed", win: "winner", grad: "gradient", pad: "padding"};
  var positions = [];  // [stepIndex, frameIndex or -1]
  steps.forEach(function (li, s) {
    var fig = data.steps[s].figure;
    if (fig && fig.kind === "frames" && fig.frames.length) {
      fig.frames.forEach(function (_, f) { positions.push([s, f]); });
    } else {
      positions.push([s, -1]);
    }
  });
  var current = 0, timer = null;
  var slider = document.getElementById("slider"), where = document.getElementById("where");
  var playButton = document.getElementById("play");

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function stageTables(li) {
    return Array.prototype.slice.call(li.querySelectorAll("figure.frames .stage > *"));
  }

  function cell(table, rc) {
    if (!table || table.tagName !== "TABLE") return null;
    var row = table.tBodies[0].rows[rc[0]];
    return row ? row.cells[rc[1]] : null;
  }

  function applyMarks(tables, marks, on) {
    marks.forEach(function (m) {
      m[2].forEach(function (rc) {
        var td = cell(tables[m[0]], rc);
        if (td) td.classList.toggle("m-" + m[1], on);
      });
    });
  }

  function setValues(tables, values) {
    tables.forEach(function (t) {
      if (t.tagName !== "TABLE") return;
      Array.prototype.forEach.call(t.querySelectorAll("td"), function (td) {
        if (td.dataset.original !== undefined) { td.textContent = td.dataset.original; }
      });
    });
    values.forEach(function (v) {
      v[1].forEach(function (row, r) {
        row.forEach(function (text, c) {
          var td = cell(tables[v[0]], [r, c]);
          if (!td) return;
          if (td.dataset.original === undefined) td.dataset.original = td.textContent;
          td.textContent = text;
        });
      });
    });
  }

  function showFrame(s, f) {
    var li = steps[s], fig = data.steps[s].figure, frame = fig.frames[f];
    var tables = stageTables(li);
    tables.forEach(function (t) {
      Array.prototype.forEach.call(t.querySelectorAll("td"), function (td) {
        Object.keys(ROLES).forEach(function (role) { if (role !== "pad") td.classList.remove("m-" + role); });
      });
    });
    applyMarks(tables, fig.fixed, true);
    applyMarks(tables, frame.marks, true);
    setValues(tables, frame.values);
    Array.prototype.forEach.call(li.querySelectorAll(".formula"), function (span, i) {
      span.classList.toggle("current", i === frame.formula);
    });
    var panel = li.querySelector(".panel");
    panel.hidden = false;
    panel.textContent = "";
    panel.appendChild(el("div", frame.caption, "caption"));
    if (frame.terms.length) {
      var table = el("table");
      var head = el("tr");
      head.appendChild(el("th", "term"));
      head.appendChild(el("th", fig.running));
      table.appendChild(head);
      frame.terms.forEach(function (term, i) {
        var tr = el("tr");
        tr.appendChild(el("td", term));
        tr.appendChild(el("td", frame.running[i]));
        table.appendChild(tr);
      });
      panel.appendChild(table);
    }
    var legend = el("div", null, "legend");
    var used = {};
    fig.fixed.concat(frame.marks).forEach(function (m) { used[m[1]] = true; });
    Object.keys(ROLES).forEach(function (role) {
      if (!used[role]) return;
      var span = el("span", ROLES[role]);
      span.style.setProperty("--c", "var(--" + role + ")");
      legend.appendChild(span);
    });
    panel.appendChild(legend);
  }

  function go(index, updateHash) {
    if (!positions.length) return;
    current = Math.max(0, Math.min(positions.length - 1, index));
    var p = positions[current], s = p[0], f = p[1];
    steps.forEach(function (li, i) { li.classList.toggle("current", i === s); });
    Array.prototype.forEach.call(document.querySelectorAll("section.explanation"), function (section) {
      section.classList.toggle("current", section.contains(steps[s]));
    });
    if (f >= 0) showFrame(s, f);
    slider.value = String(current);
    var n = data.steps[s].figure && f >= 0 ? data.steps[s].figure.frames.length : 0;
    where.textContent = "step " + (s + 1) + " of " + steps.length + (f >= 0 ? " · frame " + (f + 1) + " of " + n : "");
    if (updateHash !== false) {
      var hash = "#step=" + (s + 1) + (f > 0 ? "." + (f + 1) : "");
      try { history.replaceState(null, "", hash); } catch (e) { /* a sandboxed frame may refuse */ }
    }
  }

  function fromHash() {
    var m = /step=(\d+)(?:\.(\d+))?/.exec(location.hash);
    if (!m) return null;
    var s = parseInt(m[1], 10) - 1, f = m[2] ? parseInt(m[2], 10) - 1 : 0, first = -1;
    for (var i = 0; i < positions.length; i++) {
      if (positions[i][0] === s) {
        if (first < 0) first = i;
        if (positions[i][1] === f) return i;
      }
    }
    return first < 0 ? null : first;
  }

  function play(on) {
    if (timer) { clearInterval(timer); timer = null; }
    if (on) {
      if (current >= positions.length - 1) go(0);
      timer = setInterval(function () {
        if (current >= positions.length - 1) { play(false); return; }
        go(current + 1);
      }, 1200);
    }
    playButton.textContent = timer ? "⏸ Pause" : "▶ Play";
    playButton.setAttribute("aria-pressed", timer ? "true" : "false");
  }

  // ------------------------------------------------------------------ receptive-field grids
  function setupFields(li, fig) {
    var figure = li.querySelector("figure.fields");
    figure.querySelector(".hint").hidden = false;
    var layers = Array.prototype.slice.call(figure.querySelectorAll(".layer"));
    var info = figure.querySelector(".info");
    var grids = fig.shapes.map(function (shape, l) {
      var rows = shape.length === 2 ? shape[0] : 1, cols = shape[shape.length - 1];
      var size = Math.max(1, Math.min(14, Math.floor(220 / Math.max(rows, cols))));
      var canvas = document.createElement("canvas");
      canvas.width = cols * size;
      canvas.height = rows * size;
      canvas.setAttribute("aria-label", fig.names[l] + " units");
      layers[l].appendChild(canvas);
      var grid = {canvas: canvas, rows: rows, cols: cols, size: size, l: l};
      canvas.addEventListener("click", function (ev) {
        var box = canvas.getBoundingClientRect();
        var c = Math.floor((ev.clientX - box.left) / box.width * cols);
        var r = Math.floor((ev.clientY - box.top) / box.height * rows);
        select(l, [Math.max(0, Math.min(rows - 1, r)), Math.max(0, Math.min(cols - 1, c))]);
      });
      return grid;
    });

    function paint(grid, box, color) {
      var ctx = grid.canvas.getContext("2d");
      if (!box) {
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, grid.canvas.width, grid.canvas.height);
        if (grid.size >= 5) {
          ctx.strokeStyle = "#dde1e6";
          for (var r = 0; r < grid.rows; r++) for (var c = 0; c < grid.cols; c++) {
            ctx.strokeRect(c * grid.size + 0.5, r * grid.size + 0.5, grid.size - 1, grid.size - 1);
          }
        }
        return;
      }
      var r0 = Math.max(0, box[0][0]), r1 = Math.min(grid.rows - 1, box[0][1]);
      var c0 = Math.max(0, box[1][0]), c1 = Math.min(grid.cols - 1, box[1][1]);
      if (r1 < r0 || c1 < c0) return;
      ctx.fillStyle = color;
      ctx.fillRect(c0 * grid.size, r0 * grid.size, (c1 - c0 + 1) * grid.size, (r1 - r0 + 1) * grid.size);
    }

    function span(text, lohi) { return lohi ? text + " " + lohi[0] + "…" + lohi[1] : text + " none"; }

    function select(l, unit) {
      grids.forEach(function (g) { paint(g, null); });
      var shape = fig.shapes[l];
      var axes = shape.length === 2 ? ["rows", "cols"] : ["positions"];
      var unitIdx = shape.length === 2 ? unit : [unit[1]];
      paint(grids[l], [[unit[0], unit[0]], [unit[1], unit[1]]], "#d6452f");
      var lines = [fig.names[l] + ", unit (" + unitIdx.join(", ") + "):"];
      fig.fields.forEach(function (f) {
        if (f.layer !== l) return;
        var spans = f.spans.map(function (axis, a) { return axis[unitIdx[a]]; });
        var box = shape.length === 2 ? spans : [[0, 0], spans[0]];
        if (spans.every(function (s) { return s; })) paint(grids[f.earlier], box, "rgba(47, 111, 223, 0.55)");
        lines.push("  sees in " + fig.names[f.earlier] + ": " +
                   spans.map(function (s, a) { return span(axes[a], s); }).join(", ") +
                   "  (size " + f.size.join("×") + ", jump " + f.jump.join("×") +
                   ", start " + f.start.join(", ") + ")");
      });
      if (lines.length === 1) lines.push("  (the input: it sees itself)");
      info.textContent = lines.join("\n");
      figure.dataset.selected = l + ":" + unitIdx.join(",");
    }

    var last = fig.shapes.length - 1, shape = fig.shapes[last];
    select(last, shape.length === 2 ? [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2)]
                                    : [0, Math.floor(shape[0] / 2)]);
  }

  // ------------------------------------------------------------------ wiring
  document.documentElement.classList.add("js");
  document.getElementById("controls").hidden = false;
  slider.max = String(Math.max(0, positions.length - 1));
  steps.forEach(function (li, s) {
    var fig = data.steps[s].figure;
    if (fig && fig.kind === "fields") setupFields(li, fig);
  });
  document.getElementById("first").addEventListener("click", function () { play(false); go(0); });
  document.getElementById("prev").addEventListener("click", function () { play(false); go(current - 1); });
  document.getElementById("next").addEventListener("click", function () { play(false); go(current + 1); });
  document.getElementById("last").addEventListener("click", function () { play(false); go(positions.length - 1); });
  playButton.addEventListener("click", function () { play(!timer); });
  slider.addEventListener("input", function () { play(false); go(parseInt(slider.value, 10)); });
  document.addEventListener("keydown", function (ev) {
    if (ev.target === slider || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var keys = {ArrowRight: 1, ArrowDown: 1, PageDown: 1, ArrowLeft: -1, ArrowUp: -1, PageUp: -1};
    if (keys[ev.key]) { play(false); go(current + keys[ev.key]); }
    else if (ev.key === " ") { if (ev.target.tagName === "BUTTON") return; play(!timer); }
    else if (ev.key === "Home") { play(false); go(0); }
    else if (ev.key === "End") { play(false); go(positions.length - 1); }
    else return;
    ev.preventDefault();
  });
  window.addEventListener("hashchange", function () {
    var i = fromHash();
    if (i !== null) go(i, false);
  });
  var start = fromHash();
  go(start === null ? 0 : start, start !== null);
})();
