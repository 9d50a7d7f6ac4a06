/* desivoids: the environment chapter's interactive slab (no library, no CDN).
 *
 * Reads the JSON written by desivoids.environment.explorer (element #slab-data): tracers of one
 * cap inside a cube of comoving space, their flag under every algorithm, and every algorithm's
 * spheres (VoidFinder: holes; V2: effective spheres). The reader turns a slab through the cube
 * (azimuth and elevation of its normal, by sliders or by dragging the canvas), moves it and
 * changes its thickness; the galaxies inside the slab are drawn projected on its mid plane,
 * coloured by their flag under one algorithm, and each algorithm's spheres appear as the
 * circles where they cut the mid plane, one layer per algorithm.
 *
 * Inside the canvas: axes with ticks in Mpc/h from the cube's centre (named after the comoving
 * axis they run along, when they do), an orientation mark (the comoving x, y, z axes projected
 * on the slab), a legend (flags and void layers), and on a mock run the MOCK mark. The page's
 * static preview (.slab-fallback, drawn by desivoids.environment.explorer for readers without
 * JavaScript) is removed once the canvas is drawn. The figure's start view is the preview's
 * (data.view).
 */
(function () {
  "use strict";
  var COLOURS = {VoidFinder: "#1f77b4", REVOLVER: "#2ca02c", VIDE: "#9467bd", ZOBOV: "#d62728"};
  var FLAG_COLOURS = {"0": "#555555", "1": "#1f77b4", "2": "#ff7f0e", "9": "#bbbbbb"};
  var FLAG_NAMES = {"0": "wall", "1": "void", "2": "edge", "9": "outside"};

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function slider(controls, label, min, max, step, value) {
    var wrap = el("label", {}, label + " ");
    var input = el("input", {type: "range", min: min, max: max, step: step, value: value});
    var out = el("output", {}, String(value));
    input.addEventListener("input", function () { out.textContent = input.value; });
    wrap.appendChild(input);
    wrap.appendChild(out);
    controls.appendChild(wrap);
    return input;
  }

  var AXES = ["x", "y", "z"];

  // The comoving axis a unit vector runs along ("y", "-x"), or "" when it runs along none.
  function axisName(w) {
    for (var k = 0; k < 3; k++) {
      if (Math.abs(w[k]) > 0.999) { return (w[k] < 0 ? "\u2212" : "") + AXES[k]; }
    }
    return "";
  }

  function backed(ctx, text, x, y, align, baseline) {
    ctx.textAlign = align; ctx.textBaseline = baseline;
    var m = ctx.measureText(text), w = m.width, h = 13;
    var x0 = align === "center" ? x - w / 2 : (align === "right" ? x - w : x);
    var y0 = baseline === "middle" ? y - h / 2 : (baseline === "bottom" ? y - h : y);
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.fillRect(x0 - 2, y0 - 1, w + 4, h + 2);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x, y);
  }

  // Ticks every 100 Mpc/h along the bottom and left edges, and the axes' names with units.
  function drawAxes(ctx, canvas, scale, half, u, v) {
    var W = canvas.width, H = canvas.height, cx = W / 2, cy = H / 2;
    var reach = Math.floor(half * Math.SQRT2 / 100) * 100;
    ctx.save();
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.font = "11px sans-serif";
    ctx.strokeRect(0.5, 0.5, W - 1, H - 1);
    for (var t = -reach; t <= reach; t += 100) {
      var x = cx + scale * t, y = cy - scale * t;
      ctx.beginPath(); ctx.moveTo(x, H); ctx.lineTo(x, H - 7); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(7, y); ctx.stroke();
      var label = String(t).replace("-", "\u2212");
      backed(ctx, label, x, H - 9, "center", "bottom");
      // the left labels keep clear of the bottom axis' labels and of the legend
      if (t !== 0 && y > 40 && y < H - 40) { backed(ctx, label, 9, y, "left", "middle"); }
    }
    var hu = axisName(u), hv = axisName(v);
    var h = (hu ? "comoving " + hu : "across the slab") + " (Mpc/h from the cube's centre)";
    var vt = (hv ? "comoving " + hv : "up the slab") + " (Mpc/h)";
    ctx.font = "12px sans-serif";
    backed(ctx, h, cx, H - 26, "center", "bottom");
    ctx.translate(46, cy); ctx.rotate(-Math.PI / 2);
    backed(ctx, vt, 0, 0, "center", "middle");
    ctx.restore();
    return [h, vt];
  }

  // The comoving axes seen on the slab: an arrow per axis, or a dot / cross when it points
  // out of / into the screen.
  function drawOrientation(ctx, canvas, u, v, n) {
    var ox = canvas.width - 56, oy = 62, len = 30, out = [];
    ctx.save();
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.fillRect(ox - 48, oy - 52, 96, 100);
    ctx.strokeStyle = "#000"; ctx.fillStyle = "#000"; ctx.lineWidth = 1.5;
    ctx.font = "bold 12px sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    for (var k = 0; k < 3; k++) {
      var a = u[k], b = v[k], inPlane = Math.sqrt(a * a + b * b);
      if (inPlane < 0.15) {
        ctx.beginPath(); ctx.arc(ox, oy, 6, 0, 2 * Math.PI); ctx.stroke();
        if (n[k] > 0) { ctx.beginPath(); ctx.arc(ox, oy, 1.8, 0, 2 * Math.PI); ctx.fill(); }
        else {
          ctx.beginPath(); ctx.moveTo(ox - 4, oy - 4); ctx.lineTo(ox + 4, oy + 4);
          ctx.moveTo(ox + 4, oy - 4); ctx.lineTo(ox - 4, oy + 4); ctx.stroke();
        }
        ctx.fillText(AXES[k], ox - 13, oy - 11);
        out.push(AXES[k] + (n[k] > 0 ? " out of the screen" : " into the screen"));
        continue;
      }
      var ex = ox + len * a, ey = oy - len * b;
      ctx.beginPath(); ctx.moveTo(ox, oy); ctx.lineTo(ex, ey); ctx.stroke();
      ctx.fillText(AXES[k], ox + (len + 9) * a, oy - (len + 9) * b);
      out.push(AXES[k]);
    }
    ctx.font = "10px sans-serif";
    ctx.fillText("comoving axes", ox, oy - 41);
    ctx.restore();
    return out;
  }

  // The legend, inside the canvas: the galaxies' flags, then the void layers shown.
  function drawLegend(ctx, counts, by, shown) {
    var rows = Object.keys(FLAG_NAMES).map(function (k) {
      return {text: FLAG_NAMES[k] + " galaxy (" + by + ")", colour: FLAG_COLOURS[k], dot: true};
    }).concat(shown.map(function (a) {
      return {text: a + " voids (cut by the slab)", colour: COLOURS[a], dot: false};
    }));
    ctx.save();
    ctx.font = "12px sans-serif";
    var w = 0;
    rows.forEach(function (r) { w = Math.max(w, ctx.measureText(r.text).width); });
    var x = 8, y = 8, lh = 17;
    ctx.fillStyle = "rgba(255,255,255,0.88)";
    ctx.fillRect(x, y, w + 36, rows.length * lh + 8);
    ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
    ctx.strokeRect(x + 0.5, y + 0.5, w + 35, rows.length * lh + 7);
    ctx.textAlign = "left"; ctx.textBaseline = "middle";
    rows.forEach(function (r, i) {
      var ry = y + 4 + lh * i + lh / 2;
      if (r.dot) {
        ctx.fillStyle = r.colour; ctx.fillRect(x + 12, ry - 3, 6, 6);
      } else {
        ctx.strokeStyle = r.colour; ctx.lineWidth = 1.5;
        ctx.beginPath(); ctx.arc(x + 15, ry, 6, 0, 2 * Math.PI); ctx.stroke();
      }
      ctx.fillStyle = "#000";
      ctx.fillText(r.text, x + 28, ry);
    });
    ctx.restore();
    return rows.map(function (r) { return r.text; });
  }

  function drawMock(ctx, canvas) {
    ctx.save();
    ctx.font = "bold 13px sans-serif"; ctx.textAlign = "right"; ctx.textBaseline = "bottom";
    var text = "MOCK: not DESI data", w = ctx.measureText(text).width;
    var x = canvas.width - 10, y = canvas.height - 44;
    ctx.fillStyle = "#fff"; ctx.fillRect(x - w - 4, y - 17, w + 8, 20);
    ctx.strokeStyle = "#b30000"; ctx.strokeRect(x - w - 4, y - 17, w + 8, 20);
    ctx.fillStyle = "#b30000"; ctx.fillText(text, x, y);
    ctx.restore();
  }

  function init() {
    var root = document.getElementById("slab-explorer");
    var source = document.getElementById("slab-data");
    if (!root || !source) { return; }
    var data = JSON.parse(source.textContent);
    var g = data.galaxies, half = data.half_width, algs = data.algorithms;
    var view = data.view || {azimuth: 0, elevation: 90, offset: 0, thickness: 20,
                             algorithm: algs[0]};

    var controls = el("div", {"class": "slab-controls"});
    var az = slider(controls, "azimuth (deg)", 0, 180, 1, view.azimuth);
    var elev = slider(controls, "elevation (deg)", -90, 90, 1, view.elevation);
    var offset = slider(controls, "offset (Mpc/h)", -half, half, 1, view.offset);
    var thick = slider(controls, "thickness (Mpc/h)", 2, 80, 1, view.thickness);
    var colourBy = el("select", {"aria-label": "colour galaxies by the flags of"});
    algs.forEach(function (a) { colourBy.appendChild(el("option", {value: a}, a)); });
    colourBy.value = view.algorithm;
    var cwrap = el("label", {}, "galaxy flags of ");
    cwrap.appendChild(colourBy);
    controls.appendChild(cwrap);
    var layers = {};
    algs.forEach(function (a) {
      var box = el("input", {type: "checkbox", "data-algorithm": a});
      box.checked = (a === view.algorithm);
      var lab = el("label", {style: "color:" + COLOURS[a]});
      lab.appendChild(box);
      lab.appendChild(document.createTextNode(a + " voids"));
      controls.appendChild(lab);
      layers[a] = box;
    });
    var canvas = el("canvas", {width: 640, height: 640, role: "img", "aria-label":
      "slab of comoving space: galaxies coloured by their flag, and void cross-sections"});
    var caption = el("p", {"class": "slab-caption"});
    root.appendChild(controls);
    root.appendChild(canvas);
    root.appendChild(caption);
    var ctx = canvas.getContext("2d");
    var state = window.desivoidsSlab = {ready: false, draws: 0, galaxies: 0, circles: 0,
                                        axes: [], legend: [], orientation: [], mock: false};

    function draw() {
      var t = az.value * Math.PI / 180, p = elev.value * Math.PI / 180;
      var n = [Math.cos(p) * Math.cos(t), Math.cos(p) * Math.sin(t), Math.sin(p)];
      // u: horizontal in the slab (perpendicular to n and to the z axis, x when n is along z)
      var u = [-Math.sin(t), Math.cos(t), 0];
      var v = [n[1] * u[2] - n[2] * u[1], n[2] * u[0] - n[0] * u[2], n[0] * u[1] - n[1] * u[0]];
      var d = Number(offset.value), w = Number(thick.value) / 2;
      var scale = canvas.width / (2 * half * Math.SQRT2), cx = canvas.width / 2, cy = canvas.height / 2;
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      var flags = g.flags[colourBy.value] || "", shown = 0, counts = {};
      for (var i = 0; i < g.n; i++) {
        var x = g.x[i], y = g.y[i], z = g.z[i];
        var s = x * n[0] + y * n[1] + z * n[2] - d;
        if (s > w || s < -w) { continue; }
        var f = flags.charAt(i) || "9";
        counts[f] = (counts[f] || 0) + 1;
        ctx.fillStyle = FLAG_COLOURS[f] || "#000";
        ctx.fillRect(cx + scale * (x * u[0] + y * u[1] + z * u[2]) - 1,
                     cy - scale * (x * v[0] + y * v[1] + z * v[2]) - 1, 2.2, 2.2);
        shown++;
      }
      var circles = 0;
      algs.forEach(function (a) {
        if (!layers[a].checked) { return; }
        ctx.strokeStyle = COLOURS[a];
        ctx.globalAlpha = 0.75;
        ctx.lineWidth = 1;
        (data.spheres[a] || []).forEach(function (c) {
          var h = c[0] * n[0] + c[1] * n[1] + c[2] * n[2] - d;
          if (h >= c[3] || h <= -c[3]) { return; }
          var r = Math.sqrt(c[3] * c[3] - h * h);
          ctx.beginPath();
          ctx.arc(cx + scale * (c[0] * u[0] + c[1] * u[1] + c[2] * u[2]),
                  cy - scale * (c[0] * v[0] + c[1] * v[1] + c[2] * v[2]), scale * r, 0, 2 * Math.PI);
          ctx.stroke();
          circles++;
        });
        ctx.globalAlpha = 1;
      });
      state.axes = drawAxes(ctx, canvas, scale, half, u, v);
      state.orientation = drawOrientation(ctx, canvas, u, v, n);
      state.legend = drawLegend(ctx, counts, colourBy.value,
                                algs.filter(function (a) { return layers[a].checked; }));
      state.mock = !!data.mock;
      if (data.mock) { drawMock(ctx, canvas); }
      var legend = Object.keys(FLAG_NAMES).filter(function (k) { return counts[k]; })
        .map(function (k) { return FLAG_NAMES[k] + " " + counts[k].toLocaleString("en-US"); })
        .join(", ");
      var total = data.total_in_cube;
      var sampled = g.n < total ? "a random " + g.n.toLocaleString("en-US") + " of the " +
        total.toLocaleString("en-US") + " tracers in the cube (a subsample, so that the page " +
        "stays light)" : "all " + g.n.toLocaleString("en-US") + " tracers in the cube";
      caption.textContent = (data.mock ? "MOCK sky, not DESI data. " : "") + data.cap +
        ": the figure draws " + sampled + "; " + shown.toLocaleString("en-US") +
        " of them lie in the slab (" + (legend || "none") + ", by " + colourBy.value +
        "'s flags); " + circles + " void cross-sections drawn. Cube of half width " + half +
        " Mpc/h around (" + (data.centre || []).join(", ") + ") Mpc/h.";
      [az, elev, offset, thick].forEach(function (s) { s.nextSibling.textContent = s.value; });
      state.draws++;
      state.galaxies = shown;
      state.circles = circles;
      state.ready = true;
    }

    [az, elev, offset, thick].forEach(function (s) { s.addEventListener("input", draw); });
    colourBy.addEventListener("change", draw);
    algs.forEach(function (a) { layers[a].addEventListener("change", draw); });
    // drag to turn the slab: horizontal motion turns the azimuth, vertical the elevation
    var drag = null;
    canvas.addEventListener("pointerdown", function (e) {
      drag = {x: e.clientX, y: e.clientY, az: Number(az.value), el: Number(elev.value)};
    });
    window.addEventListener("pointerup", function () { drag = null; });
    canvas.addEventListener("pointermove", function (e) {
      if (!drag) { return; }
      az.value = String(((drag.az + (e.clientX - drag.x) / 2) % 180 + 180) % 180);
      elev.value = String(Math.max(-90, Math.min(90, drag.el - (e.clientY - drag.y) / 2)));
      draw();
    });
    draw();
    // drawn: the static preview for readers without JavaScript is no longer needed
    var fallback = root.querySelector(".slab-fallback");
    if (fallback) { fallback.remove(); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
