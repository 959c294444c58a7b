export function BuildersPage() { return <section><h1>Builders</h1></section>; }
