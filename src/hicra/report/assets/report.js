// Rollout browser filters: run, step, phase and outcome. Inline, offline, no dependencies.
// The cards are rendered (and escaped) by Python; this only shows and hides them.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.rollout"));
  var runSelect = document.getElementById("filter-run");
  var stepSelect = document.getElementById("filter-step");
  var phaseSelect = document.getElementById("filter-phase");
  var outcomeButtons = Array.prototype.slice.call(document.querySelectorAll("button[data-outcome]"));
  var count = document.getElementById("rollout-count");
  var empty = document.getElementById("no-rollouts");
  if (!count) { return; }
  var outcome = "all";

  function matches(card) {
    var d = card.dataset;
    return (!runSelect || runSelect.value === "all" || d.run === runSelect.value) &&
      (!stepSelect || stepSelect.value === "all" || d.step === stepSelect.value) &&
      (!phaseSelect || phaseSelect.value === "all" || d.phase === phaseSelect.value) &&
      (outcome === "all" || d.outcome === outcome);
  }

  function apply() {
    var shown = 0;
    cards.forEach(function (card) {
      var ok = matches(card);
      card.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = "showing " + shown + " of " + cards.length + " sampled rollouts";
    if (empty) { empty.hidden = shown !== 0; }
  }

  [runSelect, stepSelect, phaseSelect].forEach(function (select) {
    if (select) { select.addEventListener("change", apply); }
  });
  outcomeButtons.forEach(function (button) {
    button.addEventListener("click", function () {
      outcome = button.dataset.outcome;
      outcomeButtons.forEach(function (b) {
        b.setAttribute("aria-pressed", b === button ? "true" : "false");
      });
      apply();
    });
  });
  apply();
})();
