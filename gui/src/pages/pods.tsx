export function PodsPage() { return <section><h1>Pods</h1></section>; }
