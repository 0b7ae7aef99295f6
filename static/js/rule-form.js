/* The reward-rule form shows the fields that matter for the chosen reward, trigger and value type, and hides the
   others (their values are kept: the rules service ignores what does not apply). Without JavaScript every field
   stays visible. */
(function () {
  "use strict";
  var COUPONS = ["percent_coupon", "amount_coupon"];
  var WHEN = {
    pool: function (v) { return v.kind === "pool_coupon"; },
    coupon_prefix: function (v) { return COUPONS.indexOf(v.kind) !== -1; },
    coupon_valid_days: function (v) { return COUPONS.indexOf(v.kind) !== -1 || v.kind === "pool_coupon"; },
    description: function (v) { return v.kind === "free_product" || v.kind === "custom"; },
    max_purchases: function (v) { return v.trigger === "each_purchase"; },
    milestone: function (v) { return v.trigger === "milestone"; },
    max_value: function (v) { return v.value_type === "percent_of_order"; },
  };

  function value(form, name) {
    var field = form.querySelector('[name="' + name + '"]');
    return field ? field.value : "";
  }

  function apply(form) {
    var current = { kind: value(form, "kind"), trigger: value(form, "trigger"), value_type: value(form, "value_type") };
    Object.keys(WHEN).forEach(function (name) {
      // A field alone on its line is a .form-row; one of several on a line is a .fieldBox.
      var box = form.querySelector(".fieldBox.field-" + name) || form.querySelector(".form-row.field-" + name);
      if (box) {
        var shown = WHEN[name](current);
        box.hidden = !shown;
        box.style.display = shown ? "" : "none";  // the admin's CSS may set a display that [hidden] loses to
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("rewardrule_form");
    if (!form) { return; }
    ["kind", "trigger", "value_type"].forEach(function (name) {
      var field = form.querySelector('[name="' + name + '"]');
      if (field) { field.addEventListener("change", function () { apply(form); }); }
    });
    apply(form);
  });
})();
