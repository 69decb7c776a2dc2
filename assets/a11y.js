// Labels that Dash components give no prop for: dcc.Upload's file input (its visible button
// says what it does, the input itself has no name for a screen reader; axe: "label", critical).
(function () {
    function label(root) {
        root.querySelectorAll('input[type=file]:not([aria-label])').forEach(function (input) {
            input.setAttribute('aria-label', 'Upload a table (CSV or xlsx)');
        });
    }
    new MutationObserver(function () { label(document); })
        .observe(document.documentElement, {childList: true, subtree: true});
})();
