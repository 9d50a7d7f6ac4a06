/* desivoids: the environment chapter's interactive slab (no library, no CDN).
 *
 * Reads the JSON written by desivoids.environment.explorer (element #slab-data): tracers of one
 * cap inside a cube of comoving space, their flag under every algorithm, and every algorithm's
 * spheres (VoidFinder: holes; V2: effective spheres). The reader turns a slab through the cube
 * (azimuth and elevation of its normal, by sliders or by dragging the canvas), moves it and
 * changes its thickness; the galaxies inside the slab are drawn projected on its mid plane,
 * coloured by their flag under one algorithm, and each algorithm's spheres appear as the
 * circles where they cut the mid plane, one layer per algorithm.
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

  function init() {
    var root = document.getElementById("slab-explorer");
    var source = document.getElementById("slab-data");
    if (!root || !source) { return; }
    var data = JSON.parse(source.textContent);
    var fallback = root.querySelector(".slab-fallback");
    if (fallback) { fallback.remove(); }
    var g = data.galaxies, half = data.half_width, algs = data.algorithms;

    var controls = el("div", {"class": "slab-controls"});
    var az = slider(controls, "azimuth (deg)", 0, 180, 1, 0);
    var elev = slider(controls, "elevation (deg)", -90, 90, 1, 90);
    var offset = slider(controls, "offset (Mpc/h)", -half, half, 1, 0);
    var thick = slider(controls, "thickness (Mpc/h)", 2, 80, 1, 20);
    var colourBy = el("select", {"aria-label": "colour galaxies by the flags of"});
    algs.forEach(function (a) { colourBy.appendChild(el("option", {value: a}, a)); });
    var cwrap = el("label", {}, "galaxy flags of ");
    cwrap.appendChild(colourBy);
    controls.appendChild(cwrap);
    var layers = {};
    algs.forEach(function (a) {
      var box = el("input", {type: "checkbox", "data-algorithm": a});
      box.checked = (a === "VoidFinder");
      var lab = el("label", {style: "color:" + COLOURS[a]});
      lab.appendChild(box);
      lab.appendChild(document.createTextNode(a + " voids"));
      controls.appendChild(lab);
      layers[a] = box;
    });
    var canvas = el("canvas", {width: 640, height: 640, "aria-label":
      "slab of comoving space with galaxies and void cross-sections"});
    var caption = el("p", {"class": "slab-caption"});
    root.appendChild(controls);
    root.appendChild(canvas);
    root.appendChild(caption);
    var ctx = canvas.getContext("2d");
    var state = window.desivoidsSlab = {ready: false, draws: 0, galaxies: 0, circles: 0};

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
      // scale bar: 100 Mpc/h
      ctx.strokeStyle = "#000";
      ctx.fillStyle = "#000";
      ctx.beginPath();
      ctx.moveTo(20, canvas.height - 20);
      ctx.lineTo(20 + 100 * scale, canvas.height - 20);
      ctx.stroke();
      ctx.font = "12px sans-serif";
      ctx.fillText("100 Mpc/h", 20, canvas.height - 26);
      var legend = Object.keys(FLAG_NAMES).filter(function (k) { return counts[k]; })
        .map(function (k) { return FLAG_NAMES[k] + " " + counts[k]; }).join(", ");
      caption.textContent = data.cap + ": " + shown + " of " + g.n + " tracers in the slab (" +
        (legend || "none") + ", by " + colourBy.value + "'s flags); " + circles +
        " void cross-sections drawn. Cube of half width " + half + " Mpc/h around (" +
        (data.centre || []).join(", ") + ") Mpc/h; " + data.total_in_cube + " tracers in it.";
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
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
