// Functions the console's AG Grids name in their options (dash-ag-grid looks them up here).
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

// Enter or Space on a focused cell: the row's id goes to the grid's eventData, and the page's
// callback opens that market (the keyboard's click).
dagfuncs.openRowOnKey = function (params, setEventData) {
    const key = params.event && params.event.key;
    if ((key === 'Enter' || key === ' ') && params.data && params.data.id) {
        setEventData({action: 'open', id: params.data.id, at: Date.now()});
    }
};
