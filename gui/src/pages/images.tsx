export function ImagesPage() { return <section><h1>Images</h1></section>; }
