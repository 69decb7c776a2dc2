// The console's watch on its server (see app/pages/shell_callbacks.py): note when a request to
// the server last succeeded and last failed, so the header can say "offline" after one failed
// poll instead of waiting for a timeout. Only the page's own requests are looked at.
(function () {
    if (window.gridFeeNet) { return; }
    window.gridFeeNet = {okAt: null, failedAt: null};
    const original = window.fetch.bind(window);
    window.fetch = function (resource, init) {
        const url = typeof resource === 'string' ? resource : (resource && resource.url) || '';
        const ours = url.indexOf('_dash-update-component') !== -1;
        return original(resource, init).then(
            function (response) {
                if (ours) {
                    if (response.status >= 502) { window.gridFeeNet.failedAt = Date.now(); }
                    else { window.gridFeeNet.okAt = Date.now(); }
                }
                return response;
            },
            function (error) {
                if (ours) { window.gridFeeNet.failedAt = Date.now(); }
                throw error;
            }
        );
    };
})();
