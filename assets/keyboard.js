// The keyboard's click on the overview: Enter (or Space) on a focused cell of a market's row
// opens that market, as a click on the row does (AG Grid moves the focus with Tab and the arrows).
document.addEventListener('keydown', function (event) {
    if (event.key !== 'Enter' && event.key !== ' ') { return; }
    const row = event.target && event.target.closest
        && event.target.closest('#overview-grid .ag-row[row-id]');
    if (!row || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
    event.preventDefault();
    window.dash_clientside.set_props('location', {href: '/markets/' + row.getAttribute('row-id')});
});
